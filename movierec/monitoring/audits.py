"""The monitor's audit: `movierec audit` on a schedule, in a thread of its own, because it
evaluates the production model and reads the whole answer log — minutes on a big site,
while the monitor must scrape every few seconds. The report is written where the
dashboard links it (MONITOR_DIR/audit.json and .html); the evaluator gets its `alerts`."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import orjson

from movierec.audit.config import AuditCommand
from movierec.audit.page import render
from movierec.audit.report import audit
from movierec.monitoring.config import MonitorConfig
from movierec.store.events import atomic_write

log = logging.getLogger("movierec.monitor")


class AuditRunner:
    def __init__(self, config: MonitorConfig, report: Path) -> None:
        self.every = config.audit_every
        self.command = AuditCommand(store=config.store, models_dir=config.models_dir, report=report)
        self.last_started: float | None = None
        self.last: dict[str, Any] | None = None  # the newest finished audit's report
        self.problem: str | None = None  # why the newest audit failed, or had gaps
        self._fresh: dict[str, Any] | None = None  # finished, not yet taken
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start_if_due(self, at: float) -> bool:
        if self.every <= 0 or (self._thread is not None and self._thread.is_alive()):
            return False
        if self.last_started is None:  # the first audit comes one interval after start:
            self.last_started = at  # it refits a model, and a monitor may be restarted often
            return False
        if at - self.last_started < self.every:
            return False
        self.last_started = at
        self._thread = threading.Thread(target=self._work, name="audit", daemon=True)
        self._thread.start()
        return True

    def take(self) -> dict[str, Any] | None:
        """The audit finished since the last call, once; None if none has."""
        with self._lock:
            fresh, self._fresh = self._fresh, None
        return fresh

    def wait(self, timeout: float = 600.0) -> bool:
        """For tests and shutdown: True once no audit is running."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return thread is None or not thread.is_alive()

    def summary(self) -> dict[str, Any]:
        last = self.last or {}
        return {
            "every": self.every,
            "generated_at": last.get("generated_at"),
            "report": str(self.command.report) if last else None,
            "alerts": last.get("alerts"),
            "problems": last.get("problems", []),
            "error": self.problem,
        }

    def _work(self) -> None:
        started = time.monotonic()
        try:
            report = audit(self.command)
            atomic_write(self.command.report, orjson.dumps(report, option=orjson.OPT_INDENT_2))
            atomic_write(self.command.page, render(report).encode())
        except Exception as error:  # reported by the monitor's step, never fatal
            self.problem = f"{type(error).__name__}: {error}"
            log.exception("monitor: the audit failed")
            return
        errors = [p for p in report["problems"] if "error" in p]
        self.problem = (
            "; ".join(f"{p['section']}: {p['error']}" for p in errors) if errors else None
        )
        log.info("monitor: audit done in %.1f s", time.monotonic() - started)
        with self._lock:
            self.last = self._fresh = report
