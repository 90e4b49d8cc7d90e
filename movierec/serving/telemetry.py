"""Every answer recorded (user, time, model version, experiment arm, where the list came
from, the list), for online evaluation and debugging: sampled, queued in memory by the
request path and written in the background to JSON lines, one file per hour. A full queue
drops records (counted), never requests. `movierec serve` keeps it in the registry's
directory (movierec/registry/experiments.py: answer_log_dir) unless told otherwise.

A folder it cannot write (a models folder mounted read-only, a full disk) never stops the
answers: the service goes on answering and says so loudly (an error in its log, `/healthz`,
`movierec_answer_log_failing`, an alert), keeps what it could not write for the next try
within the queue's capacity, and writes it once the folder takes it again."""

from __future__ import annotations

import collections
import errno
import logging
import os
import random
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import orjson

from movierec.serving.metrics import Metrics
from movierec.serving.sequence import SequentialAnswers

log = logging.getLogger("movierec.serving.telemetry")


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
        # What a failed write left unwritten, byte-exact, in order: written first at the next
        # flush. A whole batch tried again would double the lines a full disk took in part.
        self._pending: list[bytes] = []
        self._pending_records = 0  # the lines, whole or partly written, in _pending
        # Why the last write failed (None while writes succeed); only the flushing thread sets it.
        self.failure: str | None = None
        self._random = random.Random(seed)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if self.sample > 0 and directory is not None:
            self._writable(directory)
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
        if len(self._queue) + self._pending_records >= self.capacity:
            self.metrics.telemetry_dropped += 1
            return
        self._queue.append((time.time(), user_id, version, body, source, experiment, arm))

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.flush()
        self.flush()

    def flush(self) -> None:
        if self.directory is None or not (self._queue or self._pending):
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
        chunks = self._pending + ([b"\n".join(records) + b"\n"] if records else [])
        lines = self._pending_records + len(records)
        hour = datetime.now(UTC).strftime("%Y%m%d%H")
        left, error = _append(self.directory, f"answers-{hour}.jsonl", chunks)
        self._pending = left
        self._pending_records = sum(chunk.count(b"\n") for chunk in left)
        self.metrics.telemetry_written += lines - self._pending_records
        if error is not None:
            self._failed(error)
        elif self.failure is not None:
            log.warning("answer log: writing to %s again", self.directory)
            self.failure = None
            self.metrics.telemetry_failing = False

    def _writable(self, directory: Path) -> None:
        """Say at start, not a second later, when the folder cannot take the log."""
        try:
            directory.mkdir(parents=True, exist_ok=True)
            if not os.access(directory, os.W_OK):
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(directory))
        except OSError as error:
            self._failed(error)

    def _failed(self, error: OSError) -> None:
        self.metrics.telemetry_write_failures += 1
        reason = f"cannot write the answer log in {self.directory}: {error.strerror or error}"
        if reason != self.failure:  # once per cause, not once a second
            log.error(
                "%s; answers go on but are not recorded (online evaluation and experiments "
                "cannot see them) until it can: give serve --telemetry a folder this user "
                "can write, or make this one writable",
                reason,
            )
        self.failure = reason
        self.metrics.telemetry_failing = True

    def describe(self) -> dict[str, object]:
        """The log's state for /healthz."""
        state: dict[str, object] = {
            "directory": str(self.directory),
            "sample": self.sample,
            "writing": self.failure is None,
        }
        if self.failure is not None:
            state["error"] = self.failure
            state["waiting"] = len(self._queue) + self._pending_records
        return state

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)


def _append(directory: Path, name: str, chunks: list[bytes]) -> tuple[list[bytes], OSError | None]:
    """Append the chunks to directory/name in order: what is left unwritten, from the exact
    byte (a full disk takes part of a write and refuses the rest), and why."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(directory / name, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    except OSError as error:
        return chunks, error
    try:
        for i, chunk in enumerate(chunks):
            view = memoryview(chunk)
            try:
                while view:
                    view = view[os.write(fd, view) :]
            except OSError as error:
                return [bytes(view), *chunks[i + 1 :]], error
    finally:
        os.close(fd)
    return [], None
