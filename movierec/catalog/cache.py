"""The catalogue's persistent cache: one SQLite file (WAL), a row per user and movie id.

A row holds the fetch status (ok | not_found | pending | failed), the normalised fields as
columns (so training can read them with plain SQL), the raw answer and the retry state.
One thread writes (`write`); any number of threads read, each on its own connection,
which WAL lets proceed while the writer commits. Other processes read the settled rows
with `read_ok` (read-only; `movierec.catalog.reader` turns them into arrays): this module
is the one place that knows the tables and their columns.
"""

from __future__ import annotations

import logging
import os
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_fixed,
)

from movierec.catalog.records import MovieRecord, UserRecord

__all__ = [
    "FAILED",
    "FIELDS",
    "NOT_FOUND",
    "OK",
    "PENDING",
    "CacheEntry",
    "CacheReadError",
    "CacheWriter",
    "CatalogCache",
    "read_ok",
]

log = logging.getLogger(__name__)

OK = "ok"
NOT_FOUND = "not_found"
PENDING = "pending"
FAILED = "failed"

SCHEMA_VERSION = 1
_STOP = object()
_STATE_COLUMNS = """
    status TEXT NOT NULL,
    problems TEXT,
    raw BLOB,
    fetched_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    rounds INTEGER NOT NULL DEFAULT 0,
    next_retry REAL,
    last_error TEXT
"""
_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS users (
    id INTEGER PRIMARY KEY,
    age INTEGER, gender TEXT, occupation TEXT,
    {_STATE_COLUMNS}
);
CREATE TABLE IF NOT EXISTS movies (
    id TEXT PRIMARY KEY,
    title TEXT, year INTEGER, genres TEXT, runtime INTEGER, language TEXT,
    popularity REAL, vote_average REAL, vote_count INTEGER, tmdb_id INTEGER,
    imdb_id TEXT, adult INTEGER, release_date TEXT,
    {_STATE_COLUMNS}
);
"""
# The columns of each kind beside its id, named as the record's fields (UserRecord.age, ...).
FIELDS = {
    "user": ("age", "gender", "occupation"),
    "movie": (
        "title", "year", "genres", "runtime", "language", "popularity", "vote_average",
        "vote_count", "tmdb_id", "imdb_id", "adult", "release_date",
    ),
}  # fmt: skip
_TABLES = {"user": "users", "movie": "movies"}
_STATE = ("status", "problems", "raw", "fetched_at", "attempts", "rounds", "next_retry")
_STATE += ("last_error",)


@dataclass(slots=True)
class CacheEntry:
    """The state of one id to store; `record` only with status ok."""

    kind: str  # "user" | "movie"
    key: int | str
    status: str
    record: UserRecord | MovieRecord | None = None
    raw: bytes | None = None
    problems: dict[str, str] = field(default_factory=dict)
    fetched_at: float | None = None
    attempts: int = 0
    rounds: int = 0
    next_retry: float | None = None  # wall-clock seconds
    last_error: str | None = None


def _upsert_sql(kind: str) -> str:
    columns = ("id", *FIELDS[kind], *_STATE)
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns[1:])
    return (
        f"INSERT INTO {_TABLES[kind]} ({', '.join(columns)}) "
        f"VALUES ({', '.join('?' * len(columns))}) ON CONFLICT(id) DO UPDATE SET {updates}"
    )


_UPSERT = {kind: _upsert_sql(kind) for kind in _TABLES}
_INSERT_PENDING = {
    kind: f"INSERT OR IGNORE INTO {table} (id, status) VALUES (?, '{PENDING}')"
    for kind, table in _TABLES.items()
}


def _field_values(entry: CacheEntry) -> list[Any]:
    record = entry.record
    if record is None:
        return [None] * len(FIELDS[entry.kind])
    values = [getattr(record, name) for name in FIELDS[entry.kind]]
    if isinstance(record, MovieRecord):
        values[2] = orjson.dumps(list(record.genres)).decode()
        values[10] = None if record.adult is None else int(record.adult)
    return values


def _row(entry: CacheEntry) -> list[Any]:
    problems = orjson.dumps(entry.problems).decode() if entry.problems else None
    state = [entry.status, problems, entry.raw, entry.fetched_at, entry.attempts, entry.rounds]
    return [entry.key, *_field_values(entry), *state, entry.next_retry, entry.last_error]


class CacheReadError(RuntimeError):
    """The cache file cannot be read: not SQLite, another schema, or a read failed."""


def read_ok(path: Path, kind: str, fields: Sequence[str]) -> list[tuple[Any, ...]]:
    """(id, *fields) of every id of `kind` whose status is ok, in id order, read through a
    read-only connection (safe beside a writer in another process). No file: no rows."""
    unknown = [name for name in fields if name not in FIELDS[kind]]
    if unknown:
        raise ValueError(f"the catalogue stores no {kind} field {', '.join(unknown)}")
    if not path.exists():
        return []
    sql = f"SELECT id, {', '.join(fields)} FROM {_TABLES[kind]} WHERE status = ? ORDER BY id"
    try:
        conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=5.0)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version != SCHEMA_VERSION:
                raise CacheReadError(
                    f"{path}: not a catalogue cache of schema {SCHEMA_VERSION} (found {version})"
                )
            return conn.execute(sql, (OK,)).fetchall()
        finally:
            conn.close()
    except sqlite3.Error as error:
        raise CacheReadError(f"{path}: cannot read the catalogue cache: {error}") from error


class CatalogCache:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Set up here, then used by the client's writer thread only.
        self._writer = self._connect()
        version = self._writer.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            self._writer.close()
            raise RuntimeError(
                f"{self.path}: catalogue schema {version}, expected {SCHEMA_VERSION}"
            )
        self._writer.execute("PRAGMA journal_mode=WAL")
        # WAL with synchronous=NORMAL may lose the last commits on power loss, never
        # consistency; a lost row is only fetched again.
        self._writer.execute("PRAGMA synchronous=NORMAL")
        self._writer.executescript(_SCHEMA)
        self._writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._closed = False

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are explicit, so a reader never holds one open.
        conn = sqlite3.connect(
            self.path, timeout=10.0, isolation_level=None, check_same_thread=False
        )
        conn.execute("PRAGMA busy_timeout = 10000")
        return conn

    # --- writing (one thread) ------------------------------------------------------------

    def add_pending(self, kind: str, keys: Sequence[int | str]) -> None:
        """Remember ids to fetch; rows that exist already keep what they have."""
        self._transaction(lambda c: c.executemany(_INSERT_PENDING[kind], ((k,) for k in keys)))

    def write(self, entries: Sequence[CacheEntry]) -> None:
        def run(conn: sqlite3.Connection) -> None:
            for entry in entries:
                conn.execute(_UPSERT[entry.kind], _row(entry))

        self._transaction(run)

    def _transaction(self, body: Any) -> None:
        conn = self._writer
        conn.execute("BEGIN IMMEDIATE")
        try:
            body(conn)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # --- reading (any thread) ------------------------------------------------------------

    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("catalogue cache is closed")
            conn = self._connect()
            self._local.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        return conn

    def states(self, kind: str) -> Iterator[tuple[int | str, str, int, int, float | None]]:
        """(id, status, attempts, rounds, next_retry) of every row."""
        sql = f"SELECT id, status, attempts, rounds, next_retry FROM {_TABLES[kind]}"
        yield from self._reader().execute(sql)

    def read(self, kind: str, key: int | str) -> UserRecord | MovieRecord | None:
        """The record of an id whose status is ok, else None."""
        names = FIELDS[kind]
        sql = f"SELECT {', '.join(names)} FROM {_TABLES[kind]} WHERE id = ? AND status = ?"
        row = self._reader().execute(sql, (key, OK)).fetchone()
        if row is None:
            return None
        if kind == "user":
            return UserRecord(int(key), *row)
        values = dict(zip(names, row, strict=True))
        values["genres"] = tuple(orjson.loads(values["genres"] or "[]"))
        values["adult"] = None if values["adult"] is None else bool(values["adult"])
        return MovieRecord(str(key), **values)

    def details(self, kind: str, key: int | str) -> dict[str, Any] | None:
        """Status, problems, raw answer and retry state of one id, for diagnosis."""
        sql = f"SELECT {', '.join(_STATE)} FROM {_TABLES[kind]} WHERE id = ?"
        row = self._reader().execute(sql, (key,)).fetchone()
        if row is None:
            return None
        out = dict(zip(_STATE, row, strict=True))
        out["problems"] = orjson.loads(out["problems"]) if out["problems"] else {}
        out["raw"] = orjson.loads(out["raw"]) if out["raw"] else None
        return out

    def close(self) -> None:
        self._closed = True
        with self._readers_lock:
            readers, self._readers = self._readers, []
        for conn in [*readers, self._writer]:
            conn.close()


class CacheWriter:
    """The one thread that writes: takes entries from any thread without blocking it, and
    commits them in batches (one transaction per batch keeps a busy fetcher cheap)."""

    _BATCH = 5000

    def __init__(
        self,
        cache: CatalogCache,
        on_stored: Callable[[list[CacheEntry]], None],
        on_error: Callable[[], None],
    ) -> None:
        self._cache = cache
        self._on_stored = on_stored
        self._on_error = on_error
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="catalog-writer", daemon=True)
        self._thread.start()

    def add_pending(self, kind: str, keys: list[int | str]) -> None:
        self._queue.put((kind, keys))

    def put(self, entry: CacheEntry) -> None:
        self._queue.put(entry)

    def flush(self, timeout: float) -> bool:
        """Wait until everything queued before this call is committed (or tried)."""
        if not self._thread.is_alive():
            return False
        done = threading.Event()
        self._queue.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Commit everything queued so far, then stop."""
        self._queue.put(_STOP)
        self._thread.join(timeout)

    def _run(self) -> None:
        done = False
        while not done:
            batch = [self._queue.get()]
            while len(batch) < self._BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            done = any(item is _STOP for item in batch)
            entries = [item for item in batch if isinstance(item, CacheEntry)]
            pending = [item for item in batch if isinstance(item, tuple)]
            if self._store(pending, entries):
                self._on_stored(entries)
            for item in batch:
                if isinstance(item, threading.Event):
                    item.set()

    def _store(self, pending: list[tuple[str, list[int | str]]], entries: list[CacheEntry]) -> bool:
        # Never fatal: the state is in memory, and a lost row is fetched again later.
        retrying = Retrying(
            stop=stop_after_attempt(3),
            wait=wait_fixed(0.2),
            retry=retry_if_exception_type(sqlite3.Error),
            after=self._write_failed,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    for kind, keys in pending:
                        self._cache.add_pending(kind, keys)
                    self._cache.write(entries)
        except sqlite3.Error:
            return False
        return True

    def _write_failed(self, state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        log.error(
            "catalogue cache: write failed (try %d of 3)", state.attempt_number, exc_info=error
        )
        self._on_error()
