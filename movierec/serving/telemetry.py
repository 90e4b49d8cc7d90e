"""Every answer recorded (user, time, model version, experiment arm, where the list came
from, the list), for online evaluation and debugging: sampled, queued in memory by the
request path and written in the background to JSON lines, one file per hour. A full queue
drops records (counted), never requests. `movierec serve` keeps it in the registry's
directory (movierec/registry/experiments.py: answer_log_dir) unless told otherwise."""

from __future__ import annotations

import collections
import random
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from movierec.serving.metrics import Metrics
from movierec.serving.sequence import SequentialAnswers


class AnswerLog:
    def __init__(
        self,
        directory: Path | None,
        sample: float,
        metrics: Metrics,
        capacity: int = 200_000,
        flush_every: float = 1.0,
        seed: int = 0,
    ) -> None:
        if not 0.0 <= sample <= 1.0:
            raise ValueError("the telemetry sample share must be within 0..1")
        self.directory = directory
        self.sample = sample if directory is not None else 0.0
        self.metrics = metrics
        # Every answer, logged or sampled out, feeds the live sign of a walk through ids.
        self.sequential = SequentialAnswers()
        metrics.registry.register(self.sequential)
        self.capacity = capacity
        self._queue: collections.deque[tuple[float, int, str, bytes, str, str | None, str | None]]
        self._queue = collections.deque()
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.sample > 0 and directory is not None:
            directory.mkdir(parents=True, exist_ok=True)
            self._thread = threading.Thread(
                target=self._run, args=(flush_every,), name="answer-log", daemon=True
            )
            self._thread.start()

    def record(
        self,
        user_id: int,
        version: str,
        body: bytes,
        source: str = "model",
        experiment: str | None = None,
        arm: str | None = None,
    ) -> None:
        """Called on the request path: cheap, never blocks."""
        self.sequential.observe(user_id)
        if self.sample <= 0 or (self.sample < 1 and self._random.random() >= self.sample):
            return
        if len(self._queue) >= self.capacity:
            self.metrics.telemetry_dropped += 1
            return
        self._queue.append((time.time(), user_id, version, body, source, experiment, arm))

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.flush()
        self.flush()

    def flush(self) -> None:
        if self.directory is None or not self._queue:
            return
        records: list[bytes] = []
        while self._queue:
            at, user, version, body, source, experiment, arm = self._queue.popleft()
            records.append(
                orjson.dumps(
                    {
                        "time": datetime.fromtimestamp(at, UTC).isoformat(timespec="microseconds"),
                        "user": user,
                        "version": version,
                        "experiment": experiment,
                        "arm": arm,
                        "source": source,
                        "items": body.decode().strip(),
                    }
                )
            )
        hour = datetime.now(UTC).strftime("%Y%m%d%H")
        with open(self.directory / f"answers-{hour}.jsonl", "ab") as handle:
            handle.write(b"\n".join(records) + b"\n")
        self.metrics.telemetry_written += len(records)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
