"""`movierec run`: the main job — the simulated site and movierec together, end to end, on
embedded defaults (a local log and files under one directory).

The site's API and our service start first. Then, round after round: the site runs for a
few simulated days (its users calling our service), movierec ingests the new log lines,
trains, registers a new production model, and the service swaps to it while following the
log for fresh lists. The first round has no model yet (the site logs the failed calls);
the ledger's online figure shows, day by day, what each model did for the site's users.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from movierec.evaluation.pipeline import evaluate_registry, write_report
from movierec.http.server import HTTPServer, ServerThread
from movierec.ingest.runner import IngestConfig, Ingestor
from movierec.progress import Progress
from movierec.serving.app import RecommendationService
from movierec.serving.freshness import Freshness
from movierec.serving.loader import ModelLoader
from movierec.store.events import EventStore
from movierec.stream import open_sink
from movierec.training.pipeline import TrainConfig, train
from movierec_sim import cli as sim_cli
from movierec_sim.api import SiteApiServer
from movierec_sim.engine import SimConfig, Simulation
from movierec_sim.faults import FaultConfig
from movierec_sim.world import World, WorldConfig


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the whole system on this machine, end to end")
    sim_cli.add_world_options(p)
    p.add_argument("--days", type=float, default=21.0, help="simulated days in all")
    p.add_argument("--rounds", type=int, default=3, help="simulate-ingest-train rounds")
    p.add_argument("--dir", type=Path, default=Path("data"), help="where everything is kept")
    p.add_argument("--faults", type=float, default=0.01, help="share of dirty log lines")
    p.add_argument("--api-port", type=int, default=8080, help="the site's user/movie API")
    p.add_argument("--service-port", type=int, default=8082, help="our recommendation service")
    p.add_argument("--budget", type=float, default=30.0, help="seconds of model search a round")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    root: Path = args.dir
    if root.exists():
        shutil.rmtree(root)  # each run simulates a fresh site
    root.mkdir(parents=True)
    world = World(WorldConfig(users=args.users, movies=args.movies, seed=args.seed))
    log, store, models = f"file://{root / 'log'}", root / "store", root / "models"
    show = not args.quiet
    service = RecommendationService(models, root / "answers", sample=1.0)
    loader = ModelLoader(
        service, poll=0.5, catalogue=EventStore(store).catalog_path, catalogue_every=5.0
    )
    freshness = Freshness(service, log)
    loader.on_install.append(freshness.model_changed)
    summary: dict[str, Any] = {"dir": str(root), "rounds": []}
    with (
        SiteApiServer(world, port=args.api_port) as api,
        ServerThread(HTTPServer(service.handle, port=args.service_port)) as server,
    ):
        loader.start()
        freshness.start()
        sink = open_sink(log)
        config = SimConfig(
            seed=args.seed,
            service=f"http://127.0.0.1:{server.port}",
            faults=FaultConfig.build(args.faults),
        )
        sim = Simulation(world, config, sink, progress=Progress("simulate", enabled=show))
        try:
            for _ in range(args.rounds):
                sim.advance(args.days / args.rounds)
                quality = Ingestor(
                    IngestConfig(source=log, store=str(store), api=api.url),
                    progress=Progress("ingest", enabled=show),
                ).run()
                trained = train(
                    TrainConfig(
                        store=str(store), models_dir=str(models), budget_seconds=args.budget
                    ),
                    Progress("train", enabled=show),
                )
                _wait_for(lambda t=trained: _serving(service) == t["production"])
                summary["rounds"].append(
                    {
                        "simulated_days": round(sim.t / 86_400, 2),
                        "lines": sim.ledger.lines,
                        "stored": quality["stored"],
                        "rejected": sum(quality["rejected"].values()),
                        "production": trained["production"],
                        "reason": trained["reason"],
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
    offline = evaluate_registry(str(store), str(models))
    page = write_report(offline, root / "offline.json")
    summary["online"] = ledger["online"]["by_day"]
    summary["offline"] = {m: round(r["ndcg@20"], 4) for m, r in offline["models"].items()}
    summary["reports"] = [
        *(str(root / n) for n in ("ledger.json", "quality.json", "offline.json")),
        str(page),
    ]
    sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0


def _serving(service: RecommendationService) -> str | None:
    return service.snapshot.version if service.snapshot is not None else None


def _wait_for(condition: Any, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.2)
