"""Keep a set of child processes running: start them in order (each ready before the
next), restart one that crashes after a growing pause, and stop them in a given order.

Every start, exit, restart and stop is one JSON line in the events file (and goes to
`say`), so what happened while nobody watched can be read afterwards.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from movierec.supervision.process import Child, ChildSpec

READY_TIMEOUT = 120.0  # seconds a child may take to answer its ready URL


class Supervisor:
    def __init__(
        self, specs: Sequence[ChildSpec], events: Path, say: Callable[[dict[str, Any]], None]
    ) -> None:
        self.children = {spec.name: Child(spec) for spec in specs}
        self.events = events
        self.say = say
        self.restarts = 0

    def record(self, event: str, child: str | None = None, **details: Any) -> dict[str, Any]:
        entry = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "event": event}
        if child is not None:
            entry["process"] = child
        entry.update(details)
        self.events.parent.mkdir(parents=True, exist_ok=True)
        with self.events.open("ab") as out:
            out.write(orjson.dumps(entry) + b"\n")
        self.say(entry)
        return entry

    def start(self, stopping: Callable[[], bool]) -> None:
        """Start every child in order, each answering its ready URL before the next starts."""
        for name, child in self.children.items():
            if stopping():
                return
            child.start()
            self.record("start", name, pid=_pid(child), log=str(child.spec.log))
            child.wait_ready(READY_TIMEOUT, stopping)

    def watch(self) -> None:
        """Notice exits and crashes, and restart what is due."""
        for name, child in self.children.items():
            status = child.exited()
            if status is not None:
                if child.spec.finishes and status == 0:
                    child.finished = True
                    self.record("finished", name, status=status)
                else:
                    delay = child.schedule_restart()
                    self.restarts += 1
                    self.record(
                        "crashed",
                        name,
                        status=status,
                        restart_in_s=delay,
                        log=str(child.spec.log),
                    )
            elif child.due():
                child.start()
                self.record("restart", name, pid=_pid(child), starts=child.starts)
            elif not child.finished and child.done():
                child.finished = True
                self.record("finished", name, pid=_pid(child), still_running=True)

    def finished(self, name: str) -> bool:
        return self.children[name].finished

    def stop(self, order: Sequence[str]) -> dict[str, int | None]:
        """Stop the children in `order` (then any others), each fully before the next."""
        statuses: dict[str, int | None] = {}
        names = [*order, *(n for n in self.children if n not in order)]
        for name in names:
            child = self.children[name]
            if not child.running:
                continue
            started = time.monotonic()
            child.signal(signal.SIGINT)
            statuses[name] = status = child.wait_stopped()
            took = round(time.monotonic() - started, 2)
            self.record("stopped", name, status=status, seconds=took)
        for child in self.children.values():
            child.wait_stopped()  # reaps what exited on its own; closes every log
        return statuses


def _pid(child: Child) -> int | None:
    return child.process.pid if child.process is not None else None
