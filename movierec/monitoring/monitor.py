"""The built-in monitor: every few seconds it scrapes the service and the ingestion, brings
the online figures up to date from the log, now and then reruns drift and the
feedback-loop report, feeds the alert evaluator, and publishes one state that the
dashboard, /api/state.json and /metrics all read.

Its own directory (MonitorConfig.directory, MODELS/monitor by default) holds:

    history.json   the bounded time series of the scraped figures
    alerts.json    the evaluator's state (pending alerts keep their clock across restarts)
    online/        online_report's incremental state
    state.json     the last published state (what the page showed)

No step can stop it: each runs on its own, and a failure is logged loudly, recorded
with its reason in the state's `steps` and shown on the page; the other steps go on.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from movierec.http.server import HTTPServer, Request, Response
from movierec.monitoring import dashboard
from movierec.monitoring.audits import AuditRunner
from movierec.monitoring.config import MonitorConfig
from movierec.monitoring.evaluator import Evaluator
from movierec.monitoring.history import History
from movierec.monitoring.rules import INGEST_JOB, RULES, SERVICE_JOB, Rule
from movierec.monitoring.scrape import fetch, parse
from movierec.monitoring.summary import (
    CONTENT_TYPE,
    by_group,
    conversion_by_hour,
    hourly,
    latest_complete,
    metrics_text,
)
from movierec.online.drift import drift_report
from movierec.online.figures import online_report
from movierec.online.loop import loop_report
from movierec.progress import Progress
from movierec.registry.versions import Registry
from movierec.store.events import atomic_write

log = logging.getLogger("movierec.monitor")
_HTML = "text/html; charset=utf-8"
_JSON = "application/json"


class Monitor:
    def __init__(
        self,
        config: MonitorConfig,
        rules: tuple[Rule, ...] = RULES,
        progress: Progress | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.config = config
        self.dir = config.directory
        self.dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.progress = progress or Progress("monitor", enabled=False)
        self.history = History(self.dir / "history.json", config.points)
        self.evaluator = _load_evaluator(self.dir / "alerts.json", rules)
        self.steps: dict[str, dict[str, Any]] = {}
        self.online: dict[str, Any] | None = None
        self.drift: dict[str, Any] | None = None
        self.loop: dict[str, Any] | None = None
        self.alerts: list[dict[str, Any]] = []
        self.registry: dict[str, Any] = {}
        self.audit = AuditRunner(config, self.dir / "audit.json")
        self.rounds = 0
        self._slow_at = float("-inf")
        self._state: dict[str, Any] = self._compose(self.clock())
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # ---- one round -------------------------------------------------------------------------
    def step(self) -> dict[str, Any]:
        """Run every step once (drift and loop when due) and publish the state."""
        at = self.clock()
        self._run("scrape_service", lambda: self._scrape("service", self.config.service, at))
        if self.config.ingest:
            self._run("scrape_ingest", lambda: self._scrape("ingest", self.config.ingest, at))
        self._run("online", lambda: self._online(at))
        if at - self._slow_at >= self.config.slow_every:
            self._slow_at = at
            self._run("drift", self._drift)
            self._run("loop", self._loop)
        self._run("registry", self._registry)
        self._run("audit", lambda: self._audit(at))
        self._run("alerts", lambda: self._alerts(at))
        self.rounds += 1
        state = self._compose(at)
        self._state = state  # one assignment: a request sees the old state or the new
        self._run("save", lambda: self._save(state))
        return state

    def _run(self, name: str, work: Callable[[], str | None]) -> None:
        started = time.monotonic()
        record: dict[str, Any] = {"at": round(self.clock(), 3)}
        trace = None
        try:
            problem = work()
        except Exception as error:  # a failed step is reported, never fatal
            problem = f"{type(error).__name__}: {error}"
            trace = traceback.format_exc()
        record["seconds"] = round(time.monotonic() - started, 3)
        record["ok"] = problem is None
        if problem is not None:
            record["error"] = problem
            # Loud when it starts failing or fails differently, not every few seconds.
            if (self.steps.get(name) or {}).get("error") != problem:
                log.error(
                    "monitor: step %s failed: %s%s", name, problem, f"\n{trace}" * bool(trace)
                )
        self.steps[name] = record
        self.progress({"step": name, **record}, force=problem is not None)

    def _scrape(self, job: str, url: str, at: float) -> str | None:
        scrape = fetch(url)
        sample = parse(job, scrape)
        self.history.record(job, at, sample)
        # The evaluator sees what Prometheus would: the text, or a failed scrape.
        text = scrape.text if sample["up"] else None
        self.evaluator.observe_scrape(SERVICE_JOB if job == "service" else INGEST_JOB, text, at)
        return None if sample["up"] else f"{url}: {sample['error']}"

    def _online(self, at: float) -> None:
        report = online_report(
            self.config.store,
            self.config.models_dir,
            state=self.dir / "online",
            window_minutes=self.config.window_minutes,
        )
        hours = hourly(report)
        self.online = {
            "generated_at": report.get("generated_at"),
            "log_until": report.get("log_until"),
            "window_minutes": report.get("window_minutes"),
            "overall": report.get("overall"),
            "versions": report.get("versions", {}),
            "arms": report.get("arms", {}),
            "hours": hours,
            "latest_complete_hour": latest_complete(hours),
            "conversion_by_version": by_group(report, "version"),
            "conversion_by_arm": by_group(report, "arm"),
            "warnings": report.get("warnings", []),
        }
        self.evaluator.observe_online(conversion_by_hour(hours), at)

    def _drift(self) -> None:
        self.drift = drift_report(
            self.config.store, self.config.models_dir, rating_scale=self.config.rating_scale
        )

    def _loop(self) -> None:
        self.loop = loop_report(self.config.store)

    def _audit(self, at: float) -> str | None:
        """Start an audit when due (it runs in the background); hand the evaluator the
        figures of the last one that finished. A failed audit is this step's problem."""
        self.audit.start_if_due(at)
        finished = self.audit.take()
        if finished is not None:
            self.evaluator.observe_audit(finished["alerts"])
        return self.audit.problem

    def _registry(self) -> None:
        data = Registry(self.config.models_dir).read()
        self.registry = {"production": data.get("production"), "history": data.get("history", [])}

    def _alerts(self, at: float) -> None:
        self.alerts = [alert_json(a) for a in self.evaluator.evaluate(at)]
        atomic_write(self.dir / "alerts.json", orjson.dumps(self.evaluator.to_json()))

    def _save(self, state: dict[str, Any]) -> None:
        self.history.save()
        atomic_write(self.dir / "state.json", orjson.dumps(state))

    def _compose(self, at: float) -> dict[str, Any]:
        return {
            "generated_at": datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds"),
            "at": round(at, 3),
            "rounds": self.rounds,
            "every": self.config.every,
            "service": self.config.service,
            "ingest": self.config.ingest,
            "directory": str(self.dir),
            "steps": dict(self.steps),
            "series": self.history.to_json()["points"],
            "online": self.online,
            "drift": self.drift,
            "loop": self.loop,
            "registry": self.registry,
            "alerts": self.alerts,
            "audit": self.audit.summary(),
        }

    # ---- running ---------------------------------------------------------------------------
    @property
    def state(self) -> dict[str, Any]:
        return self._state

    def start(self) -> Monitor:
        self._thread = threading.Thread(target=self._forever, name="monitor", daemon=True)
        self._thread.start()
        return self

    def _forever(self) -> None:
        while not self._stop.is_set():
            self.step()
            self._stop.wait(self.config.every)

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    # ---- serving ---------------------------------------------------------------------------
    def handle(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return Response(405, b"method not allowed\n", "text/plain", [("Allow", "GET, HEAD")])
        state = self._state
        if request.path in ("/", "/index.html"):
            return Response(200, dashboard.render(state).encode(), _HTML)
        if request.path == "/api/state.json":
            return Response(200, orjson.dumps(state), _JSON)
        if request.path == "/metrics":
            return Response(200, metrics_text(state), CONTENT_TYPE)
        return Response(404, b"not found: try /, /api/state.json or /metrics\n", "text/plain")

    def http_server(self, host: str = "127.0.0.1", port: int = 0) -> HTTPServer:
        # No endpoint takes a body.
        return HTTPServer(self.handle, host, port, max_body=0)


def alert_json(alert: Any) -> dict[str, Any]:
    """An evaluator's AlertState as JSON-ready data."""
    if hasattr(alert, "to_json"):
        return alert.to_json()
    fields = ("name", "state", "since", "value", "summary", "severity", "history")
    return {f: getattr(alert, f, None) for f in fields}


def _load_evaluator(path: Path, rules: tuple[Rule, ...]) -> Evaluator:
    if path.exists():
        try:
            return Evaluator.from_json(orjson.loads(path.read_bytes()), rules=rules)
        except Exception as error:  # a damaged file costs the alerts' clocks, not the monitor
            log.error("monitor: %s unreadable (%s): alerts start afresh", path, error)
    return Evaluator(rules=rules)
