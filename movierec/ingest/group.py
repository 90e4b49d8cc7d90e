"""One worker of a consumer group (`movierec ingest --partitioned`): the topic's partitions
are shared by every worker of the group, and each partition's events go to its own part
of the store (movierec/store/parts.py), committed exactly as a single ingestion commits.

Exactly once across rebalances, from three rules:
- a part is written only by the worker holding its lock (parts.OwnerLock), which the
  kernel releases when the worker dies, however it dies;
- a worker given a partition resumes it from the offset its part committed last, not from
  the group's commits (stream/kafka_group.py);
- partitions are taken away only between batches (the rebalance runs inside the read), and
  what was read of them but not committed is dropped, for their next owner to read again.
So a batch is in a part with the offset after it, or in neither, and whoever owns the part
next starts right after the last batch it holds.

Duplicates are dropped within a partition: the site keys its messages by user
(stream/kafka.py's sink does), so a repeated line lands where its original did.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from typing import Any

from movierec.ingest.config import IngestConfig
from movierec.ingest.runner import STOP_CATALOGUE_WAIT, Ingestor, catalogue_client
from movierec.store.events import Checkpoint, EventStore
from movierec.store.parts import OwnerLock
from movierec.stream import parse_stream_url
from movierec.stream.kafka_group import KafkaGroupSource


class GroupIngestor:
    """Owns the parts of the partitions the group gives it, and ingests their batches."""

    def __init__(self, config: IngestConfig, progress: Callable[[dict], None] | None = None):
        self.config = config
        self.progress = progress
        self.store = EventStore(config.store)
        if self.store.checkpoint_path.exists():
            raise ValueError(
                f"the store {self.store.root} was written by one ingestion, not in parts: "
                "a group's workers need a store of their own"
            )
        self.store.parts_dir.mkdir(parents=True, exist_ok=True)
        self.catalog = catalogue_client(config, self.store.catalog_path)
        self.parts: dict[int, tuple[Ingestor, OwnerLock]] = {}
        self.run_lines = 0
        self.rebalances = 0
        self.warnings: list[Any] = []  # the drift monitors' of the parts owned in this run
        self._committed_at: float | None = None
        url = parse_stream_url(config.source)
        assert url.bootstrap is not None and url.topic is not None
        self.source = KafkaGroupSource(
            url.bootstrap, url.topic, config.group, self._assign, self._revoke
        )

    # ---- what metrics read (ingest/metrics.py): the whole store, every part -------------
    @property
    def committed(self) -> tuple[dict[str, Any], float | None]:
        """The store's counters summed over every part (not only this worker's: they move
        between workers), and when this worker last committed."""
        checkpoint = self.store.checkpoint()
        return (checkpoint.counters if checkpoint else {}), self._committed_at

    @property
    def checkpoint(self) -> Checkpoint:
        return self.store.checkpoint() or Checkpoint()

    # ---- rebalances (inside source.read) ------------------------------------------------
    def _assign(self, partitions: list[int]) -> dict[int, int | None]:
        offsets: dict[int, int | None] = {}
        self.rebalances += 1
        for p in partitions:
            part = self.store.part(p)
            lock = OwnerLock(part.root)
            lock.acquire(self.config.owner_wait)
            try:
                ingestor = Ingestor(self.config, part=(part, self.catalog))
            except BaseException:
                lock.release()
                raise
            self.parts[p] = (ingestor, lock)
            offsets[p] = (ingestor.checkpoint.position or {}).get(str(p))
        return offsets

    def _revoke(self, partitions: list[int]) -> None:
        for p in partitions:
            owned = self.parts.pop(p, None)
            if owned is not None:
                owned[0].refresh_catalogue()
                self.warnings.extend(owned[0].drift.warnings[-50:])
                owned[1].release()

    # ---- driving ------------------------------------------------------------------------
    def run(self, should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
        started = time.monotonic()
        try:
            self._loop(should_stop, started)
        finally:
            self.source.close()  # leaves the group: the parts are revoked and let go
            for p in list(self.parts):
                self._revoke([p])
        try:
            return self.report(time.monotonic() - started)
        finally:
            self.catalog.close()

    def _loop(self, should_stop: Callable[[], bool], started: float) -> None:
        while not should_stop():
            batches = self.source.read(self.config.batch_lines, self.config.max_wait)
            if not batches:
                for ingestor, _ in self.parts.values():
                    ingestor.refresh_catalogue()
                if not self.config.follow and self.source.caught_up():
                    break
                continue
            for p, batch in sorted(batches.items()):
                ingestor = self.parts[p][0]
                ingestor.ingest_batch(batch.values, batch.origins, batch.end, batch.arrivals())
                self._committed_at = time.time()
                self.run_lines += len(batch)
                self.source.commit(p, batch.end[str(p)])
            if self.progress is not None:
                self.progress(self._status(started))
        # Stopped or caught up: the movie lookups asked for are worth a short wait, so the
        # verdicts on lines read so far land now (as a single ingestion does).
        wait = self.config.catalogue_wait
        self.catalog.wait_movies(min(wait, STOP_CATALOGUE_WAIT) if self.config.follow else wait)
        for ingestor, _ in self.parts.values():
            ingestor.refresh_catalogue()

    def _status(self, started: float) -> dict[str, Any]:
        counters = self.committed[0]
        elapsed = max(time.monotonic() - started, 1e-9)
        return {
            "partitions": sorted(self.parts),
            "lines_read": counters.get("lines_read", 0),
            "lines_per_second": round(self.run_lines / elapsed),
            "stored": counters.get("stored", {}),
        }

    def report(self, seconds: float = 0.0) -> dict[str, Any]:
        """The whole store's figures (every part), and this worker's share of the work."""
        counts = self.store.counts()
        counters = copy.deepcopy(self.committed[0])
        checkpoint = self.store.checkpoint()
        parts = {p.root.name: (p.checkpoint() or Checkpoint()).seq for p in self.store.parts()}
        return {
            "source": self.config.source,
            "store": self.config.store,
            "lines_read": counters.get("lines_read", 0),
            "stored": counts["stored"],
            "rejected": counts["rejected"],
            "duplicates": counters.get("duplicates", 0),
            "other_kinds": counters.get("other_kinds", {}),
            "provisional": self._provisional(),
            "catalogue": self.catalog.stats(),
            "quality": {"batches": counters.get("batches", 0), "warnings": self.warnings[-50:]},
            "position": checkpoint.position if checkpoint else {},
            "batches": counters.get("batches", 0),
            "parts": parts,
            "this_run": {
                "lines_read": self.run_lines,
                "seconds": round(seconds, 3),
                "lines_per_second": round(self.run_lines / seconds) if seconds else None,
                "rebalances": self.rebalances,
            },
        }

    def _provisional(self) -> dict[str, Any]:
        provisional = self.store.provisional_movies()
        statuses = self.catalog.movie_statuses(list(provisional))
        unvouched = {m: n for m, n in provisional.items() if statuses.get(m) != "ok"}
        return {"events": sum(unvouched.values()), "movies": len(unvouched)}
