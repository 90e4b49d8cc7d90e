"""`movierec run`: the main job — the simulated site and movierec together, end to end, on
embedded defaults (a local log and files under one directory).

The site's API and our service start first. Then, round after round: the site runs for a
few simulated days (its users calling our service), movierec ingests the new log lines,
trains, registers a new production model, and the service swaps to it while following the
log for fresh lists. The first round has no model yet (the site logs the failed calls);
the ledger's online figure shows, day by day, what each model did for the site's users.

The run's folder is marked as one (MARKER) when the run creates it. A later run in the same
folder removes only what a run creates there (RUN_ENTRIES); a folder that exists without
the marker and is not empty is refused, untouched: `--dir ~` must never cost a home.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import orjson
from pydantic import Field

from movierec.config import Settings, add_options
from movierec.evaluation.pipeline import EvaluateConfig, evaluate_registry, write_report
from movierec.http.server import ServerThread
from movierec.ingest.runner import IngestConfig, Ingestor
from movierec.online.figures import online_report
from movierec.progress import Progress
from movierec.registry.experiments import answer_log_dir
from movierec.release.train import gated_train
from movierec.serving.app import RecommendationService
from movierec.serving.freshness import Freshness
from movierec.serving.loader import ModelLoader
from movierec.store.events import EventStore
from movierec.stream import open_sink
from movierec.training.pipeline import TrainConfig
from movierec_sim.api import SiteApiServer
from movierec_sim.engine import SimConfig, Simulation
from movierec_sim.faults import FaultConfig
from movierec_sim.world import World, WorldConfig

MARKER = ".movierec-run"
RUN_ENTRIES = (
    "log",
    "store",
    "models",
    "answers",
    "ledger.json",
    "quality.json",
    "offline.json",
    "offline.html",
    "online.json",
)
SWAP_TIMEOUT = 300.0  # seconds the service may take to serve a newly trained model


class RunConfig(Settings):
    """`movierec run`'s settings (flags, MOVIEREC_RUN_* variables, [run] of the file)."""

    component: ClassVar[str] = "run"

    world: WorldConfig = Field(default_factory=WorldConfig, description="the simulated world")
    days: float = Field(21.0, gt=0, description="simulated days in all")
    rounds: int = Field(3, ge=1, description="simulate-ingest-train rounds")
    dir: Path = Field(
        Path("data"), description="where everything is kept: a new folder or a previous run's"
    )
    faults: float = Field(0.01, ge=0, le=1, description="share of dirty log lines")
    api_port: int = Field(
        8080, ge=0, le=65535, description="the site's user/movie API (0: any free port)"
    )
    service_port: int = Field(
        8082, ge=0, le=65535, description="our recommendation service (0: any free port)"
    )
    budget: float = Field(30.0, ge=0, description="seconds of model search a round")
    quiet: bool = Field(False, description="no progress lines")


class RunDirError(Exception):
    """The --dir cannot be used without touching what is not a run's."""


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the whole system on this machine, end to end")
    add_options(p, RunConfig)
    p.set_defaults(handler=run)


def run(config: RunConfig) -> int:
    try:
        prepare_run_dir(config.dir)
        summary = _run(config, config.dir)
    except RunDirError as error:
        print(f"movierec run: {error}", file=sys.stderr)
        return 2
    except TimeoutError as error:
        print(f"movierec run: {error}", file=sys.stderr)
        return 1
    sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def prepare_run_dir(root: Path) -> None:
    """Make root ready for a fresh run: create it with the marker, or clear what a previous
    run left in it (RUN_ENTRIES only). Anything else is refused with nothing deleted."""
    marker = root / MARKER
    if root.exists() or root.is_symlink():
        if not root.is_dir():
            raise RunDirError(f"--dir {root} exists and is not a folder")
        if _is_run_marker(marker):
            for name in RUN_ENTRIES:
                _remove(root / name)
            return
        held = sorted(entry.name for entry in root.iterdir())
        if held:
            shown = ", ".join(held[:5]) + (f" and {len(held) - 5} more" if len(held) > 5 else "")
            raise RunDirError(
                f"--dir {root} already holds files that no run made ({shown}; there is no "
                f"{MARKER} marker), so it was left as it is: choose a new or empty folder"
            )
    root.mkdir(parents=True, exist_ok=True)
    marker.write_bytes(orjson.dumps({"made_by": "movierec run", "entries": list(RUN_ENTRIES)}))


def _is_run_marker(marker: Path) -> bool:
    if marker.is_symlink() or not marker.is_file():
        return False
    try:
        return orjson.loads(marker.read_bytes()).get("made_by") == "movierec run"
    except (orjson.JSONDecodeError, AttributeError):
        return False


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()  # a link is removed, never what it points to
    elif path.is_dir():
        shutil.rmtree(path)


def _run(config: RunConfig, root: Path) -> dict[str, Any]:
    world = World(config.world)
    log, store, models = f"file://{root / 'log'}", root / "store", root / "models"
    show = not config.quiet
    service = RecommendationService(models, answer_log_dir(models), sample=1.0)
    loader = ModelLoader(
        service, poll=0.5, catalogue=EventStore(store).catalog_path, catalogue_every=5.0
    )
    freshness = Freshness(service, log, store=store)
    loader.on_install.append(freshness.model_changed)
    summary: dict[str, Any] = {"dir": str(root), "rounds": []}
    quality: dict[str, Any] = {}
    with (
        SiteApiServer(world, port=config.api_port) as api,
        ServerThread(service.http_server(port=config.service_port)) as server,
    ):
        loader.start()
        freshness.start()
        sink = open_sink(log)
        sim_config = SimConfig(
            seed=config.world.seed,
            service=f"http://127.0.0.1:{server.port}",
            faults=FaultConfig.build(config.faults),
        )
        sim = Simulation(world, sim_config, sink, progress=Progress("simulate", enabled=show))
        try:
            for _ in range(config.rounds):
                sim.advance(config.days / config.rounds)
                quality = Ingestor(
                    IngestConfig(source=log, store=str(store), api=api.url),
                    progress=Progress("ingest", enabled=show),
                ).run()
                trained = gated_train(
                    TrainConfig(
                        store=str(store), models_dir=str(models), budget_seconds=config.budget
                    ),
                    progress=Progress("train", enabled=show),
                )
                production = trained["production"]
                if production is None:  # nothing to compare on, and nothing served before
                    raise RuntimeError(f"training promoted no model: {trained['reason']}")
                wait_for(
                    lambda v=production: _serving(service) == v,
                    f"the service to serve the new production model {production}",
                    SWAP_TIMEOUT,
                )
                summary["rounds"].append(
                    {
                        "simulated_days": round(sim.t / 86_400, 2),
                        "lines": sim.ledger.lines,
                        "stored": quality["stored"],
                        "rejected": sum(quality["rejected"].values()),
                        "production": production,
                        "promoted": trained["promoted"],
                        "reason": trained["reason"],
                        "gate": {k: trained["gate"].get(k) for k in ("judged", "passed")},
                    }
                )
        finally:
            sim.close()
            sink.close()
            loader.stop()
            freshness.stop()
            service.answers.close()
    ledger = sim.ledger_json()
    (root / "ledger.json").write_bytes(orjson.dumps(ledger, option=orjson.OPT_INDENT_2))
    (root / "quality.json").write_bytes(orjson.dumps(quality, option=orjson.OPT_INDENT_2))
    offline = evaluate_registry(EvaluateConfig(store=str(store), models_dir=str(models)))
    page = write_report(offline, root / "offline.json")
    online = online_report(store, models, final=True)  # from the log alone, as on a real site
    (root / "online.json").write_bytes(orjson.dumps(online, option=orjson.OPT_INDENT_2))
    summary["online"] = ledger["online"]["by_day"]
    summary["online_from_log"] = {
        version: {k: figures[k] for k in ("requests", "availability", "conversion@30m")}
        for version, figures in online["versions"].items()
    }
    summary["against_bounds"] = against_bounds(offline, ledger["online"])
    summary["offline"] = {m: round(r["ndcg@20"], 4) for m, r in offline["models"].items()}
    summary["reports"] = [
        *(str(root / n) for n in ("ledger.json", "quality.json", "offline.json", "online.json")),
        str(page),
    ]
    return summary


def against_bounds(offline: dict[str, Any], online: dict[str, Any]) -> dict[str, Any]:
    """The production model against the floor (popularity, offline NDCG@20) and the ceiling
    (the oracle's expected follow share on the same sampled visits, online)."""
    models = offline["models"]
    chosen = next((m for m, r in models.items() if r.get("production")), None)
    floor = models.get("popularity", {}).get("ndcg@20")
    oracle = online.get("oracle", {})
    ours, best = oracle.get("service_expected_share_same_visits"), oracle.get("expected_share")
    return {
        "production_model": chosen,
        "ndcg@20_vs_popularity": (
            round(models[chosen]["ndcg@20"] / floor, 3) if chosen and floor else None
        ),
        "online_share_of_oracle": round(ours / best, 4) if ours is not None and best else None,
    }


def _serving(service: RecommendationService) -> str | None:
    return service.snapshot.version if service.snapshot is not None else None


def wait_for(condition: Callable[[], bool], what: str, timeout: float, poll: float = 0.2) -> None:
    """Return once condition() holds; TimeoutError naming `what` once `timeout` s pass."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(poll)
