"""What the main job is doing, read from what its processes leave in the run's folder, and
shown as one line refreshed in place on a terminal or as JSON lines otherwise."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import orjson

from movierec.registry.experiments import Experiments
from movierec.registry.versions import Registry
from movierec.store.events import EventStore

_TAIL = 16_384  # bytes of the site's output read for its latest progress line


def status(root: Path, restarts: int) -> dict[str, Any]:
    site = last_progress(root / "logs" / "site.log", "simulate")
    checkpoint = EventStore(root / "store").checkpoint()
    counters = checkpoint.counters if checkpoint is not None else {}
    registry = Registry(root / "models")
    production, releases = None, []
    if (root / "models" / "registry.json").is_file():
        production, releases = registry.production(), registry.releases()
    experiment = Experiments(root / "models").current()
    return {
        "simulated_days": site.get("simulated_days"),
        "site_lines": site.get("lines"),
        "calls": site.get("calls"),
        "ingested_lines": counters.get("lines_read", 0),
        "stored": sum(counters.get("stored", {}).values()),
        "production": production,
        "releases": len(releases),
        "last_decision": releases[-1].decision if releases else None,
        "experiment": experiment.id if experiment is not None else None,
        "restarts": restarts,
    }


def last_progress(path: Path, job: str) -> dict[str, Any]:
    """The latest JSON progress line of `job` in a process's output ({} if none yet)."""
    try:
        with path.open("rb") as output:
            size = output.seek(0, os.SEEK_END)
            output.seek(max(0, size - _TAIL))
            tail = output.read()
    except FileNotFoundError:
        return {}
    prefix = b'{"job":"' + job.encode() + b'"'
    for line in reversed(tail.splitlines()):
        if line.startswith(prefix):
            try:
                return orjson.loads(line)
            except orjson.JSONDecodeError:
                continue
    return {}


class Display:
    """A terminal gets one line rewritten in place; a pipe or file gets a JSON line every
    `every` seconds. Events (starts, crashes, decisions) always get a line of their own."""

    def __init__(self, enabled: bool, stream: TextIO | None = None, every: float = 5.0) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.tty = self.stream.isatty()
        self.every = every
        self._last = 0.0
        self._dirty = False

    def event(self, entry: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self._end_line()
        self.stream.write(orjson.dumps(entry).decode() + "\n")
        self.stream.flush()

    def message(self, text: str) -> None:
        self._end_line()
        self.stream.write(text + "\n")
        self.stream.flush()

    def due(self) -> bool:
        """Whether the next update would be shown (status is read only then)."""
        return self.enabled and time.monotonic() - self._last >= (1.0 if self.tty else self.every)

    def update(self, figures: dict[str, Any]) -> None:
        if not self.due():
            return
        self._last = time.monotonic()
        if self.tty:
            self.stream.write("\r\x1b[2K" + _line(figures))
            self._dirty = True
        else:
            self.stream.write(orjson.dumps({"job": "run", **figures}).decode() + "\n")
        self.stream.flush()

    def _end_line(self) -> None:
        if self._dirty:
            self.stream.write("\n")
            self._dirty = False


def _line(f: dict[str, Any]) -> str:
    day = f.get("simulated_days")
    parts = [
        f"day {day:.2f}" if isinstance(day, int | float) else "site starting",
        f"{f.get('site_lines') or 0:,} lines",
        f"{f['stored']:,} stored",
        f"production {f['production'] or '-'}",
        f"{f['releases']} releases",
    ]
    if f.get("experiment"):
        parts.append(f"canary {f['experiment']}")
    if f.get("restarts"):
        parts.append(f"{f['restarts']} restarts")
    return "  ".join(parts)
