"""The one interface every event stream backend implements (local log, Kafka).

A stream carries messages: one log line each, raw bytes, no trailing newline.
Sinks append messages; sources read them back in order from a resume position.
Positions are opaque to callers but JSON-serialisable, so ingestion can store
them atomically beside the data they cover (exactly-once across restarts).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pyarrow as pa

# A resume point: JSON-serialisable, backend-specific (byte offset, or {partition: offset}).
Position = Any


class StreamUnavailableError(OSError):
    """The stream cannot be reached now (a broker down or still starting): nothing was read,
    so a later attempt from the same position loses and duplicates nothing."""


@dataclass(slots=True)
class Batch:
    """Messages read in one call, with where each came from and where to resume after them."""

    values: list[bytes]
    # Resume position after the last message of this batch.
    end: Position = None
    # Where messages came from, human-readable ("log@1234" byte offset, "movielog1/0@5678"),
    # for many rows at once. Computed only on demand: at a million lines a second, a string
    # per line costs too much unless it is needed (rejected lines, provisional events).
    origins_of: Callable[[np.ndarray], pa.Array] | None = None
    # When each message reached the stream, epoch ns: the broker's timestamp where there is
    # one, else the reader's clock when it read it (never later than that). What a line
    # may claim as its time is judged against this, not against its neighbours.
    arrival_ns: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.values)

    def origins(self, rows: np.ndarray) -> pa.Array:
        """Origins of the given rows (ascending), as a string array."""
        if self.origins_of is None:
            return pa.array([f"#{i}" for i in rows.tolist()], pa.string())
        return self.origins_of(rows)

    def origin(self, index: int) -> str:
        return self.origins(np.array([index]))[0].as_py()

    def arrivals(self) -> np.ndarray:
        """Arrival time of every message (the reader's clock now where the source gave none)."""
        if self.arrival_ns is None:
            return np.full(len(self.values), time.time_ns(), dtype=np.int64)
        return self.arrival_ns


class Sink(Protocol):
    def write(self, values: Sequence[bytes]) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class Source(Protocol):
    def seek(self, position: Position) -> None:
        """Continue reading right after position (None: from the beginning)."""
        ...

    def read(self, max_messages: int, timeout: float) -> Batch:
        """Up to max_messages; an empty batch when none arrived within timeout seconds."""
        ...

    def at_end(self) -> bool:
        """True when everything written so far has been read (for runs without --follow)."""
        ...

    def commit(self, position: Position) -> None:
        """Record that everything up to position is durably processed (best effort, visibility)."""
        ...

    def close(self) -> None: ...
