"""The processes of the main job, as the commands a person would run by hand.

    serve      movierec serve      answers :8082 from the registry's production version
    site       movierec simulate   the simulated site: its API, its users calling us, its log
    ingest     movierec ingest     follows the log into the event store
    schedule   movierec schedule   retrains, gates, canaries, promotes or aborts
    monitor    movierec monitor    the dashboard and the alerts

They share nothing but the run's folder (and the log), so a training can never stall an
answer, and each can crash and be restarted alone.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from movierec.release.scheduler import ScheduleCommand
from movierec.run.config import RunConfig
from movierec.supervision.argv import to_argv
from movierec.supervision.process import ChildSpec

# Stopped first to last. Ingestion first: its last catalogue lookups (is this line's
# movie real?) need the site's API, and lines it has not read wait safely in the log.
# Then the site stops sending requests and lines, and checkpoints; the service answers
# until the very end.
STOP_ORDER = ("ingest", "site", "schedule", "monitor", "serve")


@dataclass(frozen=True)
class Ports:
    api: int
    service: int
    monitor: int
    metrics: int

    @property
    def service_url(self) -> str:
        return f"http://127.0.0.1:{self.service}"

    @property
    def dashboard_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor}"


def stream_url(config: RunConfig, root: Path) -> str:
    if config.kafka:
        return f"kafka://{config.kafka_bootstrap}/{config.topic}"
    return f"file://{root / 'log'}"


def movierec(*args: str) -> list[str]:
    return [sys.executable, "-m", "movierec.cli", *args]


def children(config: RunConfig, root: Path, ports: Ports) -> list[ChildSpec]:
    """In start order: each is ready before the next starts."""
    log, store, models = stream_url(config, root), str(root / "store"), str(root / "models")
    logs = root / "logs"
    site = root / "site"
    # A bounded site keeps its API up once done, until stopped after ingestion caught up.
    days = ["--days", str(config.days), "--linger"] if config.days is not None else []
    schedule = ScheduleCommand(
        store=store,
        models_dir=models,
        every=config.retrain_every,
        min_events=config.min_events,
        budget_seconds=config.budget,
        canary=config.canary,
    )
    return [
        ChildSpec(
            "serve",
            movierec(
                "serve",
                "--models",
                models,
                "--port",
                str(ports.service),
                "--store",
                store,
                "--source",
                log,
            ),
            logs / "serve.log",
            ready_url=f"{ports.service_url}/healthz/live",
        ),
        ChildSpec(
            "site",
            movierec(
                "simulate",
                "--state",
                str(site),
                "--ledger",
                str(site / "ledger.json"),
                "--stream",
                log,
                "--api-port",
                str(ports.api),
                "--service",
                ports.service_url,
                "--speed",
                str(config.speed),
                "--faults",
                str(config.faults),
                *days,
                *(["--api-control"] if config.api_control else []),
                *to_argv(config.world),
            ),
            logs / "site.log",
            ready_url=f"http://127.0.0.1:{ports.api}/user/1",
            finishes=config.days is not None,
            done_url=f"http://127.0.0.1:{ports.api}/_site/finished" if days else None,
        ),
        ChildSpec(
            "ingest",
            movierec(
                "ingest",
                "--source",
                log,
                "--store",
                store,
                "--follow",
                "--api",
                f"http://127.0.0.1:{ports.api}",
                "--metrics-port",
                str(ports.metrics),
            ),
            logs / "ingest.log",
            ready_url=f"http://127.0.0.1:{ports.metrics}/metrics",
        ),
        ChildSpec(
            "schedule",
            movierec("schedule", *to_argv(schedule)),
            logs / "schedule.log",
            grace=20.0,  # a training in flight is abandoned; the registry stays whole
        ),
        ChildSpec(
            "monitor",
            movierec(
                "monitor",
                "--store",
                store,
                "--models",
                models,
                "--service",
                ports.service_url,
                "--ingest",
                f"http://127.0.0.1:{ports.metrics}/metrics",
                "--port",
                str(ports.monitor),
                "--dir",
                str(root / "monitor"),
                "--quiet",
            ),
            logs / "monitor.log",
            ready_url=ports.dashboard_url,
        ),
    ]
