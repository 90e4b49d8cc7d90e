"""Gathering stream reads into processing batches: big enough to be fast, bounded in size
(memory) and in waiting time (freshness when following a live stream)."""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from movierec.stream.base import Batch, Source


@dataclass(slots=True)
class Gathered:
    values: list[bytes]
    origins: Callable[[np.ndarray], pa.Array]  # where (ascending) rows came from
    end: Any  # the source position after the last value
    arrival_ns: np.ndarray  # when each value reached the stream (Batch.arrivals)


class BatchReader:
    def __init__(
        self, source: Source, batch_lines: int, max_wait: float, poll: float = 0.2
    ) -> None:
        self.source = source
        self.batch_lines = batch_lines
        self.max_wait = max_wait
        self.poll = poll

    def next(self) -> Gathered | None:
        """The next batch, or None when nothing arrived within one poll."""
        parts: list[Batch] = []
        count = 0
        deadline = None
        while count < self.batch_lines:
            wait = self.poll if deadline is None else max(0.0, deadline - time.monotonic())
            batch = self.source.read(self.batch_lines - count, timeout=wait)
            if len(batch):
                parts.append(batch)
                count += len(batch)
                if deadline is None:
                    deadline = time.monotonic() + self.max_wait
            if self.source.at_end() or (deadline is not None and time.monotonic() >= deadline):
                break
            if not len(batch) and deadline is None:
                return None
        if not parts:
            return None
        return _combine(parts)


def _combine(parts: list[Batch]) -> Gathered:
    if len(parts) == 1:
        return Gathered(parts[0].values, parts[0].origins, parts[0].end, parts[0].arrivals())
    values: list[bytes] = []
    starts: list[int] = []
    for part in parts:
        starts.append(len(values))
        values.extend(part.values)
    bounds = np.array([*starts, len(values)])

    def origins(rows: np.ndarray) -> pa.Array:
        which = np.searchsorted(bounds, rows, side="right") - 1
        pieces = [parts[p].origins(rows[which == p] - starts[p]) for p in np.unique(which).tolist()]
        return pa.concat_arrays(pieces) if pieces else pa.array([], pa.string())

    arrivals = np.concatenate([part.arrivals() for part in parts])
    return Gathered(values, origins, parts[-1].end, arrivals)


class Prefetcher:
    """Reads the next batch while the current one is processed: the stream client and the
    parser both release the GIL, so on two cores reading and processing overlap. Only the
    prefetch thread touches the source's read side."""

    def __init__(self, reader: BatchReader) -> None:
        self.reader = reader
        self._queue: queue.Queue[tuple[Gathered | None, bool] | BaseException] = queue.Queue(1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ingest-prefetch", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                batch = self.reader.next()
                item = (batch, self.reader.source.at_end())
                while not self._stop.is_set():
                    try:
                        self._queue.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
        except BaseException as error:  # handed to the consumer of batches, not lost here
            self._queue.put(error)

    def next(self) -> tuple[Gathered | None, bool]:
        """(the next batch or None if none came within a poll, whether the source was at
        its end right after it)."""
        item = self._queue.get()
        if isinstance(item, BaseException):
            raise item
        return item

    def close(self) -> None:
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join(timeout=30)
