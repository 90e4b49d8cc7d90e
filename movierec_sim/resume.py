"""`movierec simulate --state DIR`: a site that resumes where it stopped.

DIR holds two files:

- `checkpoint.pkl` (`checkpoint.py`): the simulation's whole state at the end of a tick,
  written at the start, every `--checkpoint-every` simulated seconds and at a clean stop,
  always after the sink is flushed, so it covers exactly the lines before it. For a file
  sink it records the log's size then (`log_bytes`).
- `written`: the log's high-water mark, the simulated second before which the log may
  hold lines. It is written (one 21-byte pwrite) before each tick's lines are, so it is
  never behind the log.

The rule after a crash: the clock resumes at the later of the checkpoint's time and the
mark, so no simulated period is logged twice. The skipped span (at most the ticks since
the last checkpoint) is not simulated again and writes nothing; lines the checkpoint had
queued for it, and its delayed (late, duplicate) lines, are dropped, since the killed run
may have written them. Lines already in the log are never removed or rewritten; those a
killed run wrote after the checkpoint are counted (file sink) as `unaccounted` so the
ledger's line numbers stay the log's, and the ledger's `resumed` says what was skipped.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from movierec.progress import Progress
from movierec.stream import parse_stream_url
from movierec.stream.base import Sink
from movierec_sim import checkpoint
from movierec_sim.checkpoint import CheckpointError
from movierec_sim.config import SimConfig
from movierec_sim.engine import Simulation
from movierec_sim.world import World

CHECKPOINT = "checkpoint.pkl"
MARK = "written"
_MARK_WIDTH = 20
_CHUNK = 4 << 20


class StateDir:
    """The folder a resumable run keeps its checkpoint and high-water mark in."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.checkpoint_path = path / CHECKPOINT
        self.mark_path = path / MARK
        self._mark_fd: int | None = None

    def load(self) -> dict[str, Any] | None:
        """The last checkpoint (None: a fresh run); CheckpointError if it is unreadable."""
        return checkpoint.load(self.checkpoint_path)

    def save(self, state: dict[str, Any]) -> int:
        self.path.mkdir(parents=True, exist_ok=True)
        for stale in self.path.glob(f".{CHECKPOINT}.*.tmp"):  # left by a killed run
            stale.unlink(missing_ok=True)
        return checkpoint.save(self.checkpoint_path, state)

    def read_mark(self) -> int | None:
        try:
            text = self.mark_path.read_text().strip()
        except FileNotFoundError:
            return None
        if not text.isdigit():
            raise CheckpointError(f"high-water mark {self.mark_path} is damaged: {text[:40]!r}")
        return int(text)

    def mark(self, t: int) -> None:
        """Record that the log may now hold lines before simulated second t."""
        if self._mark_fd is None:
            self.path.mkdir(parents=True, exist_ok=True)
            self._mark_fd = os.open(self.mark_path, os.O_RDWR | os.O_CREAT, 0o644)
        os.pwrite(self._mark_fd, f"{t:0{_MARK_WIDTH}d}\n".encode(), 0)

    def close(self) -> None:
        if self._mark_fd is not None:
            os.close(self._mark_fd)
            self._mark_fd = None


class ResumableRun:
    """A Simulation started from DIR's checkpoint (or fresh), checkpointing as it goes."""

    def __init__(
        self,
        store: StateDir,
        state: dict[str, Any] | None,
        world: World,
        config: SimConfig,
        sink: Sink,
        stream: str,
        progress: Progress | None = None,
        every: int = 3600,
    ) -> None:
        self.store = store
        self.every = every
        self.stream = stream
        url = parse_stream_url(stream)
        self.log_path = url.path if url.scheme == "file" else None
        if state is not None:  # the tick is the state's, whatever --speed says now
            config = config.model_copy(update={"tick_seconds": state["tick"]})
        self.sim = sim = Simulation(world, config, sink, progress=progress)
        self.written = 0  # checkpoints written by this invocation
        self.seconds = 0.0  # wall seconds spent writing them
        self.size = 0  # bytes of the last one
        if state is None:
            store.mark(0)  # a mark left in DIR by something else must not skip anything
            self.save()  # before any line, so even an early crash resumes from here
        else:
            try:
                checkpoint.restore(sim, state)
                self._catch_up(state, progress)
            except BaseException:
                sim.close()
                raise
        sim.writer.events = None if config.events is None else sim.ledger.lines + config.events
        sim.before_write = store.mark
        self._next = (sim.t // every + 1) * every

    def run(self, should_stop: Callable[[], bool] = lambda: False) -> dict[str, Any]:
        """Simulate --days more days (or until --events more lines, or should_stop), then
        checkpoint; the ledger."""
        sim = self.sim
        try:
            sim.advance(sim.config.days, should_stop, after_tick=self._after_tick)
            self.save()  # advance flushed the sink: the checkpoint covers every line
        finally:
            sim.close()
            self.store.close()
        ledger = sim.ledger_json()
        ledger["checkpoints"] = {
            "written": self.written,
            "last_bytes": self.size,
            "wall_seconds": round(self.seconds, 3),
        }
        return ledger

    def save(self) -> None:
        started = time.monotonic()
        extra = {"stream": self.stream, "log_bytes": self._log_size()}
        self.size = self.store.save(checkpoint.capture(self.sim, extra))
        self.seconds += time.monotonic() - started
        self.written += 1

    def _after_tick(self) -> None:
        if self.sim.t >= self._next:
            self.sim.sink.flush()  # the lines first, then the checkpoint that covers them
            self.save()
            self._next = (self.sim.t // self.every + 1) * self.every

    def _log_size(self) -> int | None:
        if self.log_path is None:
            return None
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    # ---- resuming -----------------------------------------------------------------------
    def _catch_up(self, state: dict[str, Any], progress: Progress | None) -> None:
        """After the restore: skip what a killed run may have logged since the checkpoint."""
        sim = self.sim
        start = sim.t
        after = self._lines_after(state)
        mark = self.store.read_mark()
        if after and (mark is None or mark <= start):
            raise CheckpointError(
                f"the log holds {after} lines written after the checkpoint in "
                f"{self.store.path}, but the high-water mark {self.store.mark_path} does not "
                "say how far: resuming could log a simulated period twice"
            )
        dropped = 0
        if mark is not None and mark > start:
            dropped = skip(sim, mark)
        if after:
            sim.ledger.lines += after
            sim.ledger.unaccounted += after
        sim.ledger.resumed.append(
            {
                "from_checkpoint_t": start,
                "skipped_to_t": sim.t,
                "lines_after_checkpoint": after,
                "late_lines_dropped": dropped,
            }
        )
        if progress is not None:
            status: dict[str, Any] = {
                "resumed_from": _iso(sim.epoch + start),
                "simulated_days": round(start / 86_400, 3),
                "lines": sim.ledger.lines,
            }
            if sim.t > start:
                status |= {"skipped_to": _iso(sim.epoch + sim.t), "lines_after_checkpoint": after}
            progress(status, force=True)

    def _lines_after(self, state: dict[str, Any]) -> int | None:
        """Lines in the log after the checkpoint's end (None: not knowable, e.g. Kafka).

        A last line torn by the kill is ended with a newline first (appended: nothing in
        the log is rewritten), so the site's next line does not run into it."""
        recorded = state.get("log_bytes")
        if self.log_path is None or recorded is None or state.get("stream") != self.stream:
            return None
        size = self._log_size() or 0
        if size < recorded:
            print(
                f"movierec simulate: the log {self.log_path} is {recorded - size} bytes shorter "
                "than the checkpoint says; carrying on after what is there",
                file=sys.stderr,
            )
            return None
        lines = 0
        with self.log_path.open("rb") as log:
            log.seek(recorded)
            last = b"\n"
            while chunk := log.read(_CHUNK):
                lines += chunk.count(b"\n")
                last = chunk[-1:]
        if last != b"\n":
            self.sim.sink.write([b""])
            self.sim.sink.flush()
            lines += 1
        return lines


def skip(sim: Simulation, to: int) -> int:
    """Move the clock on to `to` (a tick boundary) writing nothing for the span; drop what
    was queued for it and the delayed lines. How many delayed lines were dropped."""
    first = to // sim.tick
    writer = sim.writer
    for tick in [tick for tick in writer._pending if tick < first]:
        del writer._pending[tick]
    dropped = len(writer._late)
    writer._late.clear()
    sim.t = to
    return dropped


def _iso(unix_seconds: int) -> str:
    return datetime.fromtimestamp(unix_seconds, UTC).isoformat()
