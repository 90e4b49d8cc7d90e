"""`movierec run`'s settings and its folder.

The run's folder is marked as one (MARKER) when the run creates it. A later run in the
same folder resumes it: nothing in it is deleted. A folder that exists without the marker
and is not empty is refused, untouched: `--dir ~` must never cost a home.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import ClassVar

import orjson
from pydantic import Field

from movierec.config import Settings, group
from movierec.release.canary_rules import CanaryConfig
from movierec_sim.world import WorldConfig

MARKER = ".movierec-run"
LAYOUT = {
    "log": "the site's log (a file stream; with --kafka, the topic instead)",
    "site": "the simulated site's checkpoint and ledger",
    "store": "the event store",
    "models": "the model registry, the answer log, experiments, releases",
    "monitor": "the monitor's history and alert clocks",
    "logs": "each process's output, and supervisor.jsonl: every start, crash, restart, stop",
    "reports": "the reports a bounded run writes when it ends",
    "run.json": "where the running parts listen (service, dashboard, site API, metrics)",
}


class RunConfig(Settings):
    """`movierec run`'s settings (flags, MOVIEREC_RUN_* variables, [run] of the file)."""

    component: ClassVar[str] = "run"

    world: WorldConfig = Field(default_factory=WorldConfig, description="the simulated world")
    dir: Path = Field(
        Path("data"), description="where everything is kept: a new folder or a previous run's"
    )
    days: float | None = Field(
        None, gt=0, description="simulated days to run, then stop (none: until Ctrl-C)"
    )
    speed: float = Field(
        600.0, gt=0, description="simulated seconds per real second (600: a day in 2.4 min)"
    )
    faults: float = Field(0.01, ge=0, le=1, description="share of dirty log lines")
    kafka: bool = Field(False, description="the log goes through a Kafka broker, not a file")
    kafka_bootstrap: str = Field(
        "127.0.0.1:19094", description="the broker (with --kafka; scripts/run.sh starts it)"
    )
    topic: str = Field("movielog", description="the topic (with --kafka)")
    api_port: int = Field(
        8080, ge=0, le=65535, description="the site's user/movie API (0: any free port)"
    )
    service_port: int = Field(
        8082, ge=0, le=65535, description="our recommendation service (0: any free port)"
    )
    monitor_port: int = Field(8090, ge=0, le=65535, description="the dashboard (0: any free)")
    metrics_port: int = Field(
        9100, ge=0, le=65535, description="the ingestion's /metrics (0: any free port)"
    )
    retrain_every: float = Field(120.0, gt=0, description="real seconds between trainings")
    min_events: int = Field(2000, ge=0, description="events stored before the first training")
    budget: float = Field(20.0, ge=0, description="seconds of model search per training")
    canary: CanaryConfig = Field(
        default_factory=CanaryConfig,
        description="how a retrained candidate is tried on live traffic",
        json_schema_extra=group("canary_"),
    )
    api_control: bool = Field(
        False,
        description="the site's API accepts POST /_control/faults, for incident drills "
        "(python -m movierec_sim.drill)",
    )
    quiet: bool = Field(False, description="no progress display")


class RunDirError(Exception):
    """The --dir cannot be used without touching what is not a run's."""


def prepare_run_dir(root: Path) -> bool:
    """Make root a run folder: create it with the marker, or accept a previous run's as it
    is (to resume it). Anything else is refused with nothing changed. Whether it resumes."""
    marker = root / MARKER
    if root.exists() or root.is_symlink():
        if not root.is_dir():
            raise RunDirError(f"--dir {root} exists and is not a folder")
        if _is_run_marker(marker):
            return True
        held = sorted(entry.name for entry in root.iterdir())
        if held:
            shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
            raise RunDirError(
                f"--dir {root} already holds files that no run made ({shown}; there is no "
                f"{MARKER} marker), so it was left as it is: choose a new or empty folder"
            )
    root.mkdir(parents=True, exist_ok=True)
    marker.write_bytes(orjson.dumps({"made_by": "movierec run", "layout": LAYOUT}))
    return False


def _is_run_marker(marker: Path) -> bool:
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        return orjson.loads(marker.read_bytes()).get("made_by") == "movierec run"
    except (orjson.JSONDecodeError, AttributeError):
        return False


def free_port() -> int:
    """A port nothing listens on now (for options given as 0): the children need numbers."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_taken(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False
