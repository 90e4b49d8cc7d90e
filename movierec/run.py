"""`movierec run`: the main job — the simulated site and movierec together, end to end, on
embedded defaults (a local log and files under one directory)."""

from __future__ import annotations

import argparse
from pathlib import Path

from movierec.sim import cli as sim_cli


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the whole system on this machine, end to end")
    sim_cli.add_world_options(p)
    p.add_argument("--days", type=float, default=3.0, help="simulated days to run")
    p.add_argument("--dir", type=Path, default=Path("data"), help="where everything is kept")
    p.add_argument("--faults", type=float, default=0.01, help="share of dirty log lines")
    p.add_argument("--api-port", type=int, default=8080)
    p.add_argument("--service-port", type=int, default=8082)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    args.dir.mkdir(parents=True, exist_ok=True)
    log = args.dir / "log"
    if log.exists():
        log.unlink()  # each run simulates a fresh site
    sim_args = sim_cli.build_simulate_parser().parse_args(
        [
            "--users",
            str(args.users),
            "--movies",
            str(args.movies),
            "--seed",
            str(args.seed),
            "--days",
            str(args.days),
            "--stream",
            f"file://{log}",
            "--ledger",
            str(args.dir / "ledger.json"),
            "--faults",
            str(args.faults),
            "--api-port",
            str(args.api_port),
            "--service",
            f"http://127.0.0.1:{args.service_port}",
        ]
    )
    return sim_cli.run_simulate(sim_args)
