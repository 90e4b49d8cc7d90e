"""`movierec run`: the main job — the simulated site and movierec together, end to end, on
embedded defaults (a local log and files under one directory).

    simulate the site (its API on --api-port, users calling --service-port)
    -> ingest the log into the store -> train and register models -> evaluate offline
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path
from typing import Any

import orjson

from movierec.evaluation.pipeline import evaluate_registry, write_report
from movierec.ingest.runner import IngestConfig, Ingestor
from movierec.progress import Progress
from movierec.sim import cli as sim_cli
from movierec.sim.api import SiteApiServer
from movierec.sim.engine import SimConfig, Simulation
from movierec.sim.faults import FaultConfig
from movierec.sim.world import World, WorldConfig
from movierec.stream import open_sink
from movierec.training.pipeline import TrainConfig, train


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the whole system on this machine, end to end")
    sim_cli.add_world_options(p)
    p.add_argument("--days", type=float, default=14.0, help="simulated days")
    p.add_argument("--dir", type=Path, default=Path("data"), help="where everything is kept")
    p.add_argument("--faults", type=float, default=0.01, help="share of dirty log lines")
    p.add_argument("--api-port", type=int, default=8080, help="the site's user/movie API")
    p.add_argument("--service-port", type=int, default=8082, help="our recommendation service")
    p.add_argument("--budget", type=float, default=60.0, help="seconds of model search")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    root: Path = args.dir
    if root.exists():
        shutil.rmtree(root)  # each run simulates a fresh site
    root.mkdir(parents=True)
    world = World(WorldConfig(users=args.users, movies=args.movies, seed=args.seed))
    log = f"file://{root / 'log'}"
    progress = not args.quiet
    summary: dict[str, Any] = {"dir": str(root)}
    with SiteApiServer(world, port=args.api_port) as api:
        sink = open_sink(log)
        try:
            config = SimConfig(
                seed=args.seed,
                days=args.days,
                service=f"http://127.0.0.1:{args.service_port}",
                faults=FaultConfig.build(args.faults),
            )
            ledger = Simulation(
                world, config, sink, progress=Progress("simulate", enabled=progress)
            ).run()
        finally:
            sink.close()
        (root / "ledger.json").write_bytes(orjson.dumps(ledger, option=orjson.OPT_INDENT_2))
        summary["simulated"] = {
            "lines": ledger["lines"],
            "days": args.days,
            "online": ledger["online"],
        }
        report = Ingestor(
            IngestConfig(source=log, store=str(root / "store"), api=api.url),
            progress=Progress("ingest", enabled=progress),
        ).run()
        (root / "quality.json").write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2))
        summary["ingested"] = {k: report[k] for k in ("stored", "duplicates")}
        summary["ingested"]["rejected"] = sum(report["rejected"].values())
    trained = train(
        TrainConfig(
            store=str(root / "store"), models_dir=str(root / "models"), budget_seconds=args.budget
        ),
        Progress("train", enabled=progress),
    )
    summary["production"] = {"version": trained["production"], "reason": trained["reason"]}
    offline = evaluate_registry(str(root / "store"), str(root / "models"))
    page = write_report(offline, root / "offline.json")
    summary["offline"] = {m: round(r["ndcg@20"], 4) for m, r in offline["models"].items()}
    summary["reports"] = [
        str(root / n) for n in ("ledger.json", "quality.json", "offline.json")
    ] + [str(page)]
    sys.stdout.write(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode() + "\n")
    return 0
