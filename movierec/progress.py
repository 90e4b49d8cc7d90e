"""Progress of long jobs: one JSON line on stderr every few seconds, for people and logs."""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

import orjson


class Progress:
    def __init__(
        self, job: str, every: float = 5.0, stream: TextIO | None = None, enabled: bool = True
    ) -> None:
        self.job = job
        self.every = every
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.started = time.monotonic()
        self._last = self.started

    def __call__(self, status: dict[str, Any], force: bool = False) -> None:
        now = time.monotonic()
        if not self.enabled or (not force and now - self._last < self.every):
            return
        self._last = now
        record = {"job": self.job, "elapsed_s": round(now - self.started, 1), **status}
        self.stream.write(orjson.dumps(record).decode() + "\n")
        self.stream.flush()
