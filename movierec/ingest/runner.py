"""Ingestion: read the stream, keep every valid event exactly once, keep every bad line
aside with its reason, and never stop.

One batch at a time: parse, check, de-duplicate, write the batch's files, then commit a
checkpoint naming the batch and the source position after it. A crash at any moment
leaves either the whole batch committed or none of it; a restart deletes the leftovers and
resumes from the checkpoint's position, so no event is lost or stored twice.
"""

from __future__ import annotations

import copy
import io
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from movierec.catalog.client import CatalogClient
from movierec.ingest import tables
from movierec.ingest.config import IngestConfig
from movierec.ingest.reader import BatchReader, Prefetcher
from movierec.logformat.batch import ParsedBatch, parse_batch
from movierec.logformat.reference import KIND_NAMES, REASON_CODE, REASONS, Kind
from movierec.quality.checks import future_timestamps
from movierec.quality.dedup import DedupWindow, journal_path
from movierec.quality.drift import BatchFacts, DriftMonitor, DriftThresholds
from movierec.store.events import Checkpoint, EventStore, atomic_write
from movierec.stream import open_source
from movierec.stream.base import Source

Origins = Callable[[np.ndarray], pa.Array]
_FUTURE = REASON_CODE["future_timestamp"]
_UNKNOWN_MOVIE = REASON_CODE["unknown_movie"]
# Seconds a stopped --follow run waits for the movie lookups it asked for (well within the
# 30 s a supervisor grants before SIGKILL).
STOP_CATALOGUE_WAIT = 10.0


class Ingestor:
    def __init__(
        self,
        config: IngestConfig,
        progress: Callable[[dict], None] | None = None,
        thresholds: DriftThresholds | None = None,
        part: tuple[EventStore, CatalogClient] | None = None,
    ) -> None:
        """`part`: one partition's store and the worker's catalogue client, for a worker of
        a consumer group (ingest/group.py), which reads the stream and hands batches over
        (`ingest_batch`); without it, the whole store, read from config.source (`run`)."""
        self.config = config
        self.progress = progress
        self.store = part[0] if part else EventStore(config.store)
        if config.rebuild:
            self.store.wipe()
        self.checkpoint = self.store.recover()
        journal = (
            (s, np.load(journal_path(self.store.state_dir, s)))
            for s in _journal_seqs(self.checkpoint.dedup)
        )
        self.dedup = DedupWindow.restore(self.checkpoint.dedup, journal, config.dedup_window)
        seen_path = self.store.state_dir / "seen_users.npy"
        seen = np.load(seen_path) if seen_path.exists() and self.checkpoint.seq else None
        self.drift = DriftMonitor(self.checkpoint.quality, seen, thresholds, config.rating_scale)
        self.catalog = part[1] if part else catalogue_client(config, self.store.catalog_path)
        self.source: Source | None = None
        if part is None:
            self.source = open_source(config.source, group=config.group)
            self.source.seek(self.checkpoint.position)
        self.counters: dict[str, Any] = {
            "lines_read": 0,
            "duplicates": 0,
            "batches": 0,
            "other_kinds": {},
            "stored": dict.fromkeys(KIND_NAMES[:3], 0),
            "rejected": {},
            **self.checkpoint.counters,
        }
        self.run_lines = 0
        self.last_stats: dict[str, Any] = {}
        # What /metrics shows: the counters as of the last commit and when it was (Unix
        # seconds), replaced in one assignment, so a scrape never sees half a batch nor one
        # a crash would take back (movierec/ingest/metrics.py).
        self.committed: tuple[dict[str, Any], float | None] = (copy.deepcopy(self.counters), None)

    # ---- driving ----------------------------------------------------------------------------
    def run(self, should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
        assert self.source is not None, "a part's batches are handed over (ingest_batch)"
        started = time.monotonic()
        reader = Prefetcher(BatchReader(self.source, self.config.batch_lines, self.config.max_wait))
        try:
            while not should_stop():
                batch, at_end = reader.next()
                if batch is None:
                    if not self.config.follow and at_end:
                        break
                    self.refresh_catalogue()
                    continue
                self.ingest_batch(batch.values, batch.origins, batch.end, batch.arrival_ns)
                if self.progress is not None:
                    self.progress(self._status(started))
            if self.config.follow:
                # Stopped: the movie lookups already asked for are worth a short wait, so
                # the verdicts on lines read so far land now rather than in a later run.
                # Ids whose round failed are not waited for (the API may be down).
                self.catalog.wait_movies(min(self.config.catalogue_wait, STOP_CATALOGUE_WAIT))
            else:
                self.catalog.wait_idle(self.config.catalogue_wait, settled=True)
            self.refresh_catalogue()
        finally:
            reader.close()
            self.catalog.close()
            self.source.close()
        return self.report(time.monotonic() - started)

    def _status(self, started: float) -> dict[str, Any]:
        elapsed = max(time.monotonic() - started, 1e-9)
        return {
            "batches": self.counters["batches"],
            "lines_read": self.counters["lines_read"],
            "lines_per_second": round(self.run_lines / elapsed),
            "stored": self.counters["stored"],
            "duplicates": self.counters["duplicates"],
            "rejected": sum(self.counters["rejected"].values()),
        }

    def refresh_catalogue(self) -> None:
        self.store.set_unknown_movies(self.catalog.unknown_movies())

    # ---- one batch --------------------------------------------------------------------------
    def ingest_batch(
        self, values: list[bytes], origins: Origins, end: Any, arrival_ns: np.ndarray
    ) -> None:
        """Store one batch and commit it with `end`, the stream position after it."""
        seq = self.checkpoint.seq + 1
        p = parse_batch(values, self.config.rating_scale)
        kind, reason = p.kind.copy(), p.reason.copy()
        accepted = kind >= 0
        tolerance = round(self.config.future_tolerance * 1e9)
        future = future_timestamps(p.time_ns, accepted, arrival_ns, tolerance)
        clock = max(int(arrival_ns.max()), self.checkpoint.watermark_ns or 0)
        _reject(kind, reason, future, _FUTURE)
        unvouched = self._vouch(p, kind, reason)
        accepted = kind >= 0
        rows = np.flatnonzero(accepted)
        duplicate = np.zeros(len(kind), dtype=bool)
        duplicate[rows], remembered = self.dedup.check(p.line_hash[rows], seq)
        keep = accepted & ~duplicate
        written = self._write(seq, p, values, origins, kind, reason, keep, unvouched)
        self._journal(seq, remembered)
        other = Counter(p.extra[int(i)].other for i in np.flatnonzero(keep & (kind == Kind.OTHER)))
        rejected = Counter(REASONS[r] for r in reason[reason >= 0].tolist())
        self._account(len(values), written, rejected, int(duplicate.sum()), other)
        movie_rows = keep & (p.movie >= 0)
        self.last_stats = self.drift.observe(
            seq,
            BatchFacts(
                lines=len(values),
                rejected=rejected,
                ratings=p.value[keep & (kind == Kind.RATE)],
                movie_events=int(movie_rows.sum()),
                unvouched_movie_events=int((movie_rows & unvouched).sum()),
                movie_ids=p.movies,
                movie_codes=p.movie[movie_rows],
                users=p.user[keep],
            ),
        )
        self.catalog.request_users(np.unique(p.user[keep]).tolist())
        self._commit(seq, end, clock)

    def _vouch(self, p: ParsedBatch, kind: np.ndarray, reason: np.ndarray) -> np.ndarray:
        """Reject events on movies the catalogue says do not exist; flag (and keep) those it
        cannot vouch for yet. Returns the flagged rows."""
        with_movie = (kind >= 0) & (p.movie >= 0)
        codes = np.unique(p.movie[with_movie])
        ids = [p.movies[c] for c in codes.tolist()]
        self.catalog.request_movies(ids)
        statuses = self.catalog.movie_statuses(ids)
        verdict = np.zeros(max(len(p.movies), 1), dtype=np.int8)  # 0 ok, 1 unknown, 2 unsure
        for code, movie_id in zip(codes.tolist(), ids, strict=True):
            status = statuses.get(movie_id, "pending")
            verdict[code] = 0 if status == "ok" else 1 if status == "not_found" else 2
        row_verdict = np.where(with_movie, verdict[np.maximum(p.movie, 0)], 0)
        _reject(kind, reason, row_verdict == 1, _UNKNOWN_MOVIE)
        return (row_verdict == 2) & (kind >= 0)

    def _write(
        self,
        seq: int,
        p: ParsedBatch,
        values: list[bytes],
        origins: Origins,
        kind: np.ndarray,
        reason: np.ndarray,
        keep: np.ndarray,
        unvouched: np.ndarray,
    ) -> dict[str, int]:
        store, written = self.store, {}
        for k, build in ((Kind.WATCH, tables.watch_table), (Kind.RATE, tables.rate_table)):
            rows = np.flatnonzero(keep & (kind == k))
            written[KIND_NAMES[k]] = len(rows)
            if len(rows):
                table = build(rows, p.time_ns, p.user, p.movie, p.value, p.movies)
                for date, part in tables.by_date(table, p.time_ns[rows]):
                    store.write_table(f"events/{KIND_NAMES[k]}/date={date}", seq, part)
        rows = np.flatnonzero(keep & (kind == Kind.RECOMMENDATION))
        written["recommendation"] = len(rows)
        if len(rows):
            table = tables.recommendation_table(rows, p.extra)
            for date, part in tables.by_date(table, p.time_ns[rows]):
                store.write_table(f"events/recommendation/date={date}", seq, part)
        rejected = np.flatnonzero(reason >= 0)
        if len(rejected):
            store.write_table(
                "quarantine", seq, tables.quarantine_table(rejected, reason, values, origins, seq)
            )
        provisional = np.flatnonzero(keep & unvouched)
        if len(provisional):
            table = tables.provisional_table(
                provisional, kind, p.movie, p.movies, values, origins, seq
            )
            store.write_table("provisional", seq, table)
        return written

    def _journal(self, seq: int, remembered: np.ndarray) -> None:
        """The dedup window's new keys, durable before the batch commits."""
        journal = journal_path(self.store.state_dir, seq)
        atomic_write(journal, _npy(remembered))

    def _account(
        self,
        lines: int,
        written: dict[str, int],
        rejected: Counter,
        duplicates: int,
        other: Counter,
    ) -> None:
        c = self.counters
        c["lines_read"] += lines
        c["duplicates"] += duplicates
        c["batches"] += 1
        for name, count in written.items():
            c["stored"][name] = c["stored"].get(name, 0) + count
        for name, count in rejected.items():
            c["rejected"][name] = c["rejected"].get(name, 0) + count
        for name, count in other.items():
            c["other_kinds"][name] = c["other_kinds"].get(name, 0) + count
        self.run_lines += lines

    def _commit(self, seq: int, end: Any, clock: int | None) -> None:
        atomic_write(self.store.state_dir / "seen_users.npy", _npy(self.drift.seen))
        self.checkpoint = Checkpoint(
            seq=seq,
            position=end,
            source=self.config.source,
            watermark_ns=clock,
            counters=self.counters,
            dedup=self.dedup.state(),
            quality=self.drift.state(),
        )
        self.store.commit(self.checkpoint)
        self.committed = (copy.deepcopy(self.counters), time.time())
        if self.source is not None:
            self.source.commit(end)
        live = set(self.dedup.seqs())
        for path in self.store.state_dir.glob("dedup-*.npy"):
            if int(path.stem.split("-")[1]) not in live:
                path.unlink()
        self.store.compact()  # small files merged, so commits and readers stay fast

    # ---- reporting --------------------------------------------------------------------------
    def report(self, seconds: float = 0.0) -> dict[str, Any]:
        counts = self.store.counts()
        c = self.counters
        provisional = self.store.provisional_movies()
        statuses = self.catalog.movie_statuses(list(provisional))
        unvouched = {m: n for m, n in provisional.items() if statuses.get(m) != "ok"}
        return {
            "source": self.config.source,
            "store": self.config.store,
            "lines_read": c["lines_read"],
            "stored": counts["stored"],
            "rejected": counts["rejected"],
            "duplicates": c["duplicates"],
            "other_kinds": c["other_kinds"],
            # Events whose movie the catalogue could not vouch for yet (API slow or down).
            "provisional": {
                "events": sum(unvouched.values()),
                "movies": len(unvouched),
                **(
                    {
                        "note": f"stored, but the catalogue ({self.config.api or 'no API'}) could "
                        "not vouch for these movies yet; a later run applies its verdict "
                        "(unknown movies then move to the quarantine)"
                    }
                    if unvouched
                    else {}
                ),
            },
            "catalogue": self.catalog.stats(),
            "quality": {
                "batches": self.drift.batches,
                "warnings": self.drift.warnings[-50:],
                "last_batch": self.last_stats,
            },
            "this_run": {
                "lines_read": self.run_lines,
                "seconds": round(seconds, 3),
                "lines_per_second": round(self.run_lines / seconds) if seconds else None,
            },
            "position": self.checkpoint.position,
            "batches": c["batches"],
        }


def catalogue_client(config: IngestConfig, path: Any) -> CatalogClient:
    return CatalogClient(
        config.api, path, rate_limit=config.api_rate_limit, timeout=config.api_timeout
    )


def _journal_seqs(state: dict | None) -> set[int]:
    state = state or {}
    return {part[0] for name in ("previous", "current") for part in state.get(name, [])}


def _reject(kind: np.ndarray, reason: np.ndarray, rows: np.ndarray, code: int) -> None:
    hit = rows & (kind >= 0)
    kind[hit] = -1
    reason[hit] = code


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()
