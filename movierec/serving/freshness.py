"""Fresh lists without retraining: tail the event stream, and when a user watches or rates
something newer than the model, recompute that user's list from their whole history (the
model's view plus the new events) — the movie just watched leaves the list, and the rest
moves with it. Learns of events from the stream, never from requests.

What counts as an event is exactly what ingestion counts (movierec/ingest/runner.py): the same
parser on the site's rating scale, then the same check against timestamps from the future,
on a clock that follows the stream from its start as ingestion's does. (Catalogue verdicts and
duplicates do not matter here: only movies the model knows are used, and each movie's latest
time is kept.)

Reading starts where the production model's training data ends: its provenance names the
store and the batch it was trained at (`data.store_batch`), and the store remembers the
stream position after that batch (exactly for recent batches, a little before it for old
ones: movierec/store/events.py, thin_positions). Events up to `data.to` that the model
already knows are not news, so starting a little early changes nothing; without a store of
this stream, a production model or its batch, reading starts at the stream's start."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import OrderedDict
from typing import Any

import numpy as np

from movierec.logformat.batch import parse_batch
from movierec.logformat.reference import Kind
from movierec.quality.checks import FUTURE_TOLERANCE_NS, future_timestamps
from movierec.serving.app import RecommendationService
from movierec.serving.snapshot import DEPTH, Snapshot
from movierec.store.events import EventStore
from movierec.stream import open_source

log = logging.getLogger("movierec.serving")
MAX_USERS = 200_000  # users whose recent events are remembered (least recent forgotten)
MAX_EVENTS = 200  # recent events remembered per user
RATING_SCALES = (5, 10)  # the site's rating scales, as ingestion accepts them
RETRY_MAX_SECONDS = 30.0  # longest pause before reopening a stream that failed


class Freshness:
    def __init__(
        self,
        service: RecommendationService,
        source: str,
        group: str = "movierec-serve",
        poll: float = 0.2,
        rating_scale: int = 5,
        future_tolerance_ns: int = FUTURE_TOLERANCE_NS,
        store: str | os.PathLike[str] | None = None,
    ) -> None:
        if rating_scale not in RATING_SCALES:
            raise ValueError(f"rating_scale is 5 or 10 (the site's stars), not {rating_scale!r}")
        self.service = service
        self.url = source
        self.group = group
        self.poll = poll
        self.rating_scale = rating_scale  # a 10-star site's 7 must not read as out of range
        # user -> {movie id: latest time (ns)} of watch and rate events
        self.recent: OrderedDict[int, dict[str, int]] = OrderedDict()
        self._redo = threading.Event()  # a new model: refresh everyone remembered
        self._index: tuple[str, dict[str, int]] = ("", {})  # movie id -> item, per version
        self.future_tolerance_ns = future_tolerance_ns
        self.store = store  # the event store of this stream (else the model's provenance's)
        self.started_after: int | None = None  # the batch reading started after, if any
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="freshness", daemon=True)

    def start(self) -> Freshness:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def model_changed(self, snapshot: Snapshot) -> None:
        self._redo.set()

    def _run(self) -> None:
        """Follow the stream until stopped. A stream that fails (a broker not up yet, or
        gone for a while) is reopened after a pause that doubles up to 30 s, each failure
        logged and counted: the service keeps answering from the model meanwhile."""
        pause = 1.0
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self._follow()
                return
            except Exception:
                self.service.metrics.fresh_failures += 1
                log.exception("freshness: reading %s failed; again in %.0f s", self.url, pause)
            if time.monotonic() - started > RETRY_MAX_SECONDS:
                pause = 1.0  # it had been working: a new outage starts the pauses afresh
            if self._stop.wait(pause):
                return
            pause = min(pause * 2, RETRY_MAX_SECONDS)

    def _follow(self) -> None:
        source = open_source(self.url, group=self.group)
        try:
            try:
                start = self.start_position()
            except (OSError, ValueError, KeyError):  # an unreadable store: read it all
                log.exception("freshness reads from the stream's start")
                start = None
            source.seek(start)
            while not self._stop.is_set():
                batch = source.read(100_000, timeout=self.poll)
                touched = self._remember(batch.values, batch.arrivals()) if len(batch) else set()
                if self._redo.is_set():
                    self._redo.clear()
                    touched = set(self.recent)
                if touched:
                    self.refresh(touched)
        finally:
            source.close()

    def start_position(self) -> Any:
        """The stream position after the production model's last batch (None: the start)."""
        registry = self.service.registry
        version = registry.production()
        if version is None:
            return None
        data = registry.provenance(version).get("data", {})
        batch, root = data.get("store_batch"), self.store or data.get("store")
        if not batch or not root:
            return None
        store = EventStore(root)
        checkpoint = store.checkpoint()
        if checkpoint is None or checkpoint.source != self.url:
            return None  # a store of another stream: its positions mean nothing here
        self.started_after, position = store.position_after(int(batch))
        log.info(
            "freshness reads %s after batch %d (model %s trained at batch %d)",
            self.url,
            self.started_after,
            version,
            batch,
        )
        return position

    def _remember(self, values: list[bytes], arrival_ns: np.ndarray) -> set[int]:
        parsed = parse_batch(values, self.rating_scale)
        # The same rule as ingestion: a line dated well after it arrived is a lie, not news.
        future = future_timestamps(
            parsed.time_ns, parsed.kind >= 0, arrival_ns, self.future_tolerance_ns
        )
        wanted = (parsed.kind == Kind.WATCH) | (parsed.kind == Kind.RATE)
        rows = np.flatnonzero(wanted & ~future)
        if not self.service.shard.whole:  # a shard refreshes its own users' lists alone
            rows = rows[self.service.shard.owned(parsed.user[rows])]
        touched: set[int] = set()
        movies = parsed.movies
        for user, movie, when in zip(
            parsed.user[rows].tolist(),
            parsed.movie[rows].tolist(),
            parsed.time_ns[rows].tolist(),
            strict=True,
        ):
            events = self.recent.get(user)
            if events is None:
                events = self.recent[user] = {}
            else:
                self.recent.move_to_end(user)
            name = movies[movie]
            events[name] = max(when, events.get(name, when))
            if len(events) > MAX_EVENTS:
                del events[min(events, key=events.__getitem__)]
            touched.add(user)
        while len(self.recent) > MAX_USERS:
            forgotten, _ = self.recent.popitem(last=False)
            self.service.fresh.pop(forgotten, None)
        self.service.metrics.fresh_events += len(rows)
        return touched

    def refresh(self, users: set[int]) -> None:
        snapshot = self.service.snapshot
        if snapshot is None:
            return
        if self._index[0] != snapshot.version:
            self._index = (snapshot.version, {m.decode(): i for i, m in enumerate(snapshot.items)})
        index = self._index[1]
        for user in users:
            news = [
                index[m]
                for m, t in self.recent.get(user, {}).items()
                if t > snapshot.data_end_ns and m in index
            ]
            if not news:
                self.service.fresh.pop(user, None)
                continue
            items = np.unique(np.concatenate([snapshot.history(user), np.array(news, np.int64)]))
            ranked = snapshot.model.recommend_history(user, items, None, DEPTH)
            self.service.fresh[user] = (snapshot.version, ranked)
            self.service.metrics.fresh_updates += 1
