"""The durable event store: Parquet files per kind and date, queryable with DuckDB.

Layout under the store directory:

    events/<kind>/date=YYYY-MM-DD/<seq>.parquet   stored events of one committed batch
    events/<kind>/date=YYYY-MM-DD/c<level>-<first>-<last>.parquet
                                                  batches merged by compaction (their
                                                  rows keep the batch in a seq column)
    quarantine/<seq>.parquet                      rejected lines: raw bytes, reason, origin
    provisional/<seq>.parquet                     raw lines of events stored before the
                                                  catalogue could vouch for their movie
    state/checkpoint.json                         the last committed batch (the truth),
                                                  with the manifest of committed files
    state/dedup-<seq>.npy                         the dedup journal
    state/unknown_movies.parquet                  movie ids the catalogue says do not exist
    catalog.sqlite                                the catalogue cache

A store written by the workers of a consumer group holds parts/<partition>/, each a store
of the layout above but for the catalogue (movierec/store/parts.py); read through the
root, it shows every part's committed events as one store.

A batch's files are written first (each atomically), then the checkpoint names the
batch as committed and lists its files in the manifest. Readers see only the files the
manifest lists, so neither commit nor connect walks the directories; recovery deletes
files of a batch that never committed, and merged files a crashed compaction left
unlisted (movierec/store/compaction.py). Events whose movie the catalogue later rejects
stay in their files but leave the event views and join the quarantine view, so nothing is
rewritten.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from movierec.store import compaction, parts
from movierec.store.schema import EMPTY_TABLES, KINDS, QUARANTINE_SCHEMA, SCHEMAS, SESSIONS_VIEW

log = logging.getLogger(__name__)
_SEQ_FILE = re.compile(r"^(?:dedup-)?(\d{10})\.(?:parquet|npy)$")
RECENT_POSITIONS = 16
_DICTIONARY_COLUMNS = frozenset(("movie_id", "kind", "reason", "service"))


@dataclass
class Checkpoint:
    seq: int = 0
    position: Any = None  # the source's resume position after batch seq
    source: str = ""
    watermark_ns: int | None = None  # the latest arrival time read (epoch ns), for reports
    counters: dict[str, Any] = field(default_factory=dict)
    dedup: dict[str, Any] | None = None
    quality: dict[str, Any] = field(default_factory=dict)
    # The manifest: every committed data file, relative to the store (None: a store written
    # before manifests, listed once by walking it); and files compaction retired, with when.
    files: list[str] | None = None
    retired: list[list[Any]] = field(default_factory=list)
    # [seq, position after it] of past batches, thinned with age (thin_positions): where a
    # reader of the stream resumes after the data of a model trained at batch seq.
    positions: list[list[Any]] = field(default_factory=list)

    def to_json(self) -> bytes:
        return orjson.dumps(self.__dict__, option=orjson.OPT_INDENT_2)

    @classmethod
    def from_json(cls, data: bytes) -> Checkpoint:
        return cls(**orjson.loads(data))


def seq_name(seq: int, suffix: str = ".parquet") -> str:
    return f"{seq:010d}{suffix}"


def atomic_write(path: Path, data: bytes) -> None:
    """Write via a temporary file, fsync and rename: the path holds all of data or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EventStore:
    def __init__(
        self, root: str | os.PathLike[str], policy: compaction.Policy | None = None
    ) -> None:
        self.root = Path(root)
        self.policy = policy or compaction.Policy()
        self._pending: dict[str, int] = {}  # files written since the last commit -> seq
        self.state_dir = self.root / "state"
        self.checkpoint_path = self.state_dir / "checkpoint.json"
        self.unknown_movies_path = self.state_dir / "unknown_movies.parquet"
        self.catalog_path = self.root / "catalog.sqlite"
        self.parts_dir = self.root / parts.PARTS_DIR

    # ---- parts (a consumer group's store) ---------------------------------------------------
    @property
    def partitioned(self) -> bool:
        return self.parts_dir.is_dir()

    def part(self, partition: int) -> EventStore:
        """The store of one stream partition (written only by the worker owning it)."""
        return EventStore(self.parts_dir / str(partition), self.policy)

    def parts(self) -> list[EventStore]:
        return [self.part(int(name)) for name in parts.part_names(self.parts_dir)]

    def _writable(self) -> None:
        if self.partitioned:
            raise ValueError(
                f"the store {self.root} is written in parts by `movierec ingest --partitioned` "
                "workers (one per stream partition): it cannot be written as one store"
            )

    # ---- committing -------------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint | None:
        if self.partitioned:
            named = [(p.root.name, p.checkpoint()) for p in self.parts()]
            fields = parts.aggregate(named)
            return Checkpoint(**fields) if fields else None
        if not self.checkpoint_path.exists():
            return None
        return Checkpoint.from_json(self.checkpoint_path.read_bytes())

    def recover(self) -> Checkpoint:
        """The committed checkpoint, after deleting whatever a crashed batch left behind."""
        self._writable()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        checkpoint = self.checkpoint() or Checkpoint()
        kept = set(checkpoint.files or ()) | {r[0] for r in checkpoint.retired}
        for path in self._data_files():
            match = _SEQ_FILE.search(path.name)
            if match and int(match[1]) > checkpoint.seq:
                path.unlink()
            elif compaction.MERGED.match(path.name) and self._relative(path) not in kept:
                path.unlink()  # written by a compaction that never committed
        for path in self.root.rglob(".*.tmp"):
            path.unlink()
        self._pending = {}
        return checkpoint

    def write_table(self, relative: str, seq: int, table: pa.Table) -> Path:
        path = self.root / relative / seq_name(seq)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        # Dictionaries only where values repeat (movie ids), statistics only on time (what
        # queries filter on): the two defaults cost more than the compression itself.
        pq.write_table(table, tmp, **self.parquet_options(table))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        self._pending[self._relative(path)] = seq
        return path

    @staticmethod
    def parquet_options(table: pa.Table) -> dict[str, Any]:
        # Dictionaries only where values repeat (movie ids), statistics only on time and
        # seq (what queries filter on): the two defaults cost more than the compression.
        return {
            "compression": "zstd",
            "compression_level": 1,
            "use_dictionary": [c for c in table.column_names if c in _DICTIONARY_COLUMNS],
            "write_statistics": [c for c in table.column_names if c in ("time", "seq")],
        }

    def commit(self, checkpoint: Checkpoint) -> None:
        """Commit batch checkpoint.seq: the files written for it join the manifest."""
        self._writable()
        previous = self.checkpoint()
        files = set(self._manifest(previous))
        new = {p for p, seq in self._pending.items() if seq <= checkpoint.seq} - files
        for directory in {(self.root / p).parent for p in new} | {self.state_dir}:
            fsync_dir(directory)
        checkpoint.files = sorted(files | new)
        checkpoint.retired = previous.retired if previous else []
        history = [*(previous.positions if previous else []), [checkpoint.seq, checkpoint.position]]
        checkpoint.positions = thin_positions(history, checkpoint.seq)
        self.install(checkpoint)
        self._pending = {}

    def install(self, checkpoint: Checkpoint) -> None:
        """Replace the checkpoint (manifest included) atomically and durably."""
        atomic_write(self.checkpoint_path, checkpoint.to_json())
        fsync_dir(self.state_dir)

    def compact(self, now: float | None = None) -> int:
        """Merge small committed files as the policy says; the merges done."""
        return compaction.compact(self, self.policy, now)

    @staticmethod
    def sync_directory(path: Path) -> None:
        fsync_dir(path)

    def set_unknown_movies(self, movie_ids: set[str]) -> bool:
        """Record the catalogue's verdicts; True when they changed."""
        self._writable()
        if movie_ids == self.unknown_movies():
            return False
        table = pa.table({"movie_id": pa.array(sorted(movie_ids), pa.string())})
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        atomic_write(self.unknown_movies_path, sink.getvalue().to_pybytes())
        return True

    def unknown_movies(self) -> set[str]:
        found: set[str] = set()
        for path in self._unknown_paths():
            found.update(pq.read_table(path).column("movie_id").to_pylist())
        return found

    def _unknown_paths(self) -> list[Path]:
        """The catalogue's verdicts as written: each part's (they agree once it answered)."""
        stores = self.parts() if self.partitioned else [self]
        return [s.unknown_movies_path for s in stores if s.unknown_movies_path.exists()]

    def wipe(self) -> None:
        """Forget every event, for a rebuild from the stream (the catalogue cache stays)."""
        self._writable()
        for path in self._data_files():
            path.unlink()
        for path in (self.checkpoint_path, self.unknown_movies_path):
            if path.exists():
                path.unlink()

    # ---- reading ----------------------------------------------------------------------------
    def _data_files(self) -> Iterator[Path]:
        for part in ("events", "quarantine", "provisional"):
            yield from (self.root / part).rglob("*.parquet")
        yield from self.state_dir.glob("dedup-*.npy")

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    def _manifest(self, checkpoint: Checkpoint | None) -> list[str]:
        """The committed data files, relative to the root."""
        if checkpoint is None:
            return []
        if checkpoint.files is not None:
            return checkpoint.files
        return sorted(  # a store from before manifests: listed once, by walking it
            self._relative(p)
            for part in ("events", "quarantine", "provisional")
            for p in (self.root / part).rglob("*.parquet")
            if (m := _SEQ_FILE.search(p.name)) and int(m[1]) <= checkpoint.seq
        )

    def committed_files(self, relative: str, checkpoint: Checkpoint | None = None) -> list[str]:
        """Committed files under `relative`, as paths (of `checkpoint`, or the current)."""
        prefix = relative.rstrip("/") + "/"
        listed = self._manifest(checkpoint or self.checkpoint())
        return sorted(str(self.root / p) for p in listed if parts.within_part(p).startswith(prefix))

    def position_after(self, seq: int) -> tuple[int, Any]:
        """(s, the stream position after batch s) for the latest recorded s <= seq; (0, None),
        the stream's start, when none is. Reading from there misses nothing after seq."""
        if self.partitioned:  # per-part batches name no stream position (parts.aggregate)
            log.warning(
                "the store %s is written in parts: reading the stream after batch %d starts "
                "from its beginning (correct, but slow on a long stream)",
                self.root,
                seq,
            )
            return (0, None)
        history = (self.checkpoint() or Checkpoint()).positions
        found = max((h for h in history if h[0] <= seq), key=lambda h: h[0], default=None)
        return (found[0], found[1]) if found else (0, None)

    def batch_files(self, relative: str, after: int, upto: int) -> list[tuple[str, bool]]:
        """Committed files under `relative` holding rows of batches after < seq <= upto, each
        with whether all its rows are (else a reader filters on the seq column)."""
        if self.partitioned:
            raise ValueError(
                f"the store {self.root} is written in parts, whose batch numbers are their "
                "own: reading it by batch range is not supported"
            )
        out = []
        for path in self.committed_files(relative):
            e = compaction.entry(Path(path).name)
            if e is not None and e.last > after and e.first <= upto:
                out.append((path, after < e.first and e.last <= upto))
        return out

    def connect(self, database: str = ":memory:") -> duckdb.DuckDBPyConnection:
        """A DuckDB connection with views over the committed data: watch, rate,
        recommendation, quarantine, sessions, unknown_movies."""
        con = duckdb.connect(database)
        checkpoint = self.checkpoint()  # read once: every view sees the same manifest
        verdicts = ", ".join(f"'{_quote(p)}'" for p in self._unknown_paths())
        unknown = (
            f"SELECT DISTINCT movie_id FROM read_parquet([{verdicts}])"
            if verdicts
            else "SELECT NULL::VARCHAR AS movie_id WHERE false"
        )
        con.execute(f"CREATE OR REPLACE VIEW unknown_movies AS {unknown}")
        for kind in KINDS:
            source = self._source(
                f"events/{kind}", EMPTY_TABLES[kind], con, f"_{kind}_all", checkpoint
            )
            columns = ", ".join(SCHEMAS[kind].names)  # not the seq of merged files
            keep = (
                ""
                if kind == "recommendation"
                else (" WHERE movie_id NOT IN (SELECT movie_id FROM unknown_movies)")
            )
            con.execute(f"CREATE OR REPLACE VIEW {kind} AS SELECT {columns} FROM {source}{keep}")
        quarantined = self._source(
            "quarantine", QUARANTINE_SCHEMA.empty_table(), con, "_q", checkpoint
        )
        provisional = self._source(
            "provisional", EMPTY_TABLES["provisional"], con, "_p", checkpoint
        )
        con.execute(
            f"""CREATE OR REPLACE VIEW quarantine AS
            SELECT raw, reason, origin, seq FROM {quarantined}
            UNION ALL
            SELECT raw, 'unknown_movie' AS reason, origin, seq FROM {provisional}
            WHERE movie_id IN (SELECT movie_id FROM unknown_movies)"""
        )
        con.execute(
            f"CREATE OR REPLACE VIEW pending_movies AS SELECT * FROM {provisional} "
            "WHERE movie_id NOT IN (SELECT movie_id FROM unknown_movies)"
        )
        con.execute(SESSIONS_VIEW)
        return con

    def _source(
        self,
        relative: str,
        empty: pa.Table,
        con: duckdb.DuckDBPyConnection,
        name: str,
        checkpoint: Checkpoint | None,
    ) -> str:
        files = self.committed_files(relative, checkpoint) if checkpoint else []
        if files:
            listed = ", ".join(f"'{_quote(f)}'" for f in files)
            return f"read_parquet([{listed}], union_by_name=true)"
        con.register(name, empty)
        return name

    def counts(self) -> dict[str, Any]:
        """Stored events by kind and rejected lines by reason, as the views see them."""
        with contextlib.closing(self.connect()) as con:
            stored = {k: con.sql(f"SELECT count(*) FROM {k}").fetchall()[0][0] for k in KINDS}
            rows = con.sql(
                "SELECT reason, count(*) FROM quarantine GROUP BY reason ORDER BY reason"
            ).fetchall()
        return {"stored": stored, "rejected": dict(rows)}

    def provisional_movies(self) -> dict[str, int]:
        """Events stored before the catalogue vouched for their movie, by movie (those
        the catalogue has since rejected excluded)."""
        with contextlib.closing(self.connect()) as con:
            rows = con.sql(
                "SELECT movie_id, count(*) FROM pending_movies GROUP BY movie_id"
            ).fetchall()
        return dict(rows)


def thin_positions(history: list[list[Any]], current: int) -> list[list[Any]]:
    """Every batch of the last RECENT_POSITIONS, then one per 2^k batches for a power
    growing with age (about age/16): ~16 entries per doubling of age, so a model trained
    a week ago still finds a start within a few percent of its batch."""
    kept = []
    for seq, position in history:
        age = current - seq
        step = 1 << max(0, (age // RECENT_POSITIONS).bit_length() - 1)
        if age < RECENT_POSITIONS or seq % step == 0:
            kept.append([seq, position])
    return kept


def _quote(path: str | Path) -> str:
    return str(path).replace("'", "''")
