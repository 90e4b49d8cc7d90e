"""`movierec simulate` and `movierec site`: the simulated streaming site from the command line."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson

from movierec.progress import Progress
from movierec.stream import open_sink, parse_stream_url
from movierec_sim.api import ApiFaults, SiteApiServer, serve_api
from movierec_sim.engine import SimConfig, Simulation
from movierec_sim.faults import FAULT_KINDS, FaultConfig
from movierec_sim.world import DEFAULT_START, World, WorldConfig


def add_world_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--users", type=int, default=2000, help="users in the world")
    parser.add_argument("--movies", type=int, default=500, help="movies in the world")
    parser.add_argument("--seed", type=int, default=0, help="seed of the world and its users")


def add_api_fault_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("site API faults")
    g.add_argument("--api-latency-ms", type=float, default=0.0, help="added latency")
    g.add_argument("--api-jitter-ms", type=float, default=0.0, help="random extra latency")
    g.add_argument("--api-error-share", type=float, default=0.0, help="share answered 5xx")
    g.add_argument("--api-hang-share", type=float, default=0.0, help="share never answered")
    g.add_argument("--api-missing-share", type=float, default=0.0, help="share missing fields")
    g.add_argument("--api-null-share", type=float, default=0.0, help="share with null fields")
    g.add_argument("--api-rate-limit", type=float, default=0.0, help="requests/s (0: none)")
    g.add_argument(
        "--api-control",
        action="store_true",
        help="accept POST /_control/faults to switch faults at runtime",
    )


def api_faults(args: argparse.Namespace) -> ApiFaults:
    return ApiFaults(
        latency_ms=args.api_latency_ms,
        latency_jitter_ms=args.api_jitter_ms,
        error_share=args.api_error_share,
        hang_share=args.api_hang_share,
        missing_share=args.api_missing_share,
        null_share=args.api_null_share,
        rate_limit_rps=args.api_rate_limit,
        seed=args.seed,
    )


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="run the simulated site: world, API, users, event log")
    add_simulate_options(p)
    p.set_defaults(handler=run_simulate)
    site = sub.add_parser("site", help="serve the simulated site's user/movie API only")
    add_world_options(site)
    site.add_argument("--ledger", type=Path, help="serve the world of the run behind a ledger")
    site.add_argument("--port", type=int, default=8080)
    add_api_fault_options(site)
    site.set_defaults(handler=run_site)


def build_simulate_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="movierec simulate")
    add_simulate_options(parser)
    return parser


def add_simulate_options(p: argparse.ArgumentParser) -> None:
    add_world_options(p)
    p.add_argument("--events", type=int, help="stop after this many log lines")
    p.add_argument("--days", type=float, help="stop after this many simulated days")
    p.add_argument(
        "--stream",
        default="file://data/log",
        help="where log lines go: file://PATH or kafka://HOST:PORT/TOPIC",
    )
    p.add_argument("--ledger", type=Path, help="write the run's JSON ledger here")
    p.add_argument(
        "--service", default="http://127.0.0.1:8082", help="the recommendation service users call"
    )
    p.add_argument("--timeout-ms", type=int, default=600, help="the site gives up after this")
    p.add_argument("--concurrency", type=int, default=64, help="recommendation calls in flight")
    p.add_argument(
        "--faults",
        type=float,
        default=0.0,
        help="share of all lines made dirty, spread over every kind of dirt",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="KIND=SHARE",
        help=f"share of lines with one kind of dirt ({', '.join(FAULT_KINDS)})",
    )
    p.add_argument(
        "--request-faults",
        type=float,
        default=0.0,
        help="invalid recommendation requests sent per real call",
    )
    p.add_argument(
        "--speed",
        type=float,
        default=0.0,
        help="simulated seconds per real second (0: as fast as possible)",
    )
    p.add_argument(
        "--start",
        default=DEFAULT_START.isoformat(timespec="seconds"),
        help="simulated start time (UTC)",
    )
    p.add_argument("--tick", type=int, default=None, help="simulated seconds per step")
    p.add_argument("--rating-scale", type=int, choices=(5, 10), default=5)
    p.add_argument(
        "--separator",
        choices=(", ", ","),
        default=", ",
        help="how the site joins result ids in its log",
    )
    p.add_argument(
        "--oracle-share",
        type=float,
        help="share of calls also judged with the oracle's list (default: auto)",
    )
    p.add_argument(
        "--api-port",
        type=int,
        default=8080,
        help="serve the user/movie API here while simulating (0: do not)",
    )
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    add_api_fault_options(p)


def parse_fault_overrides(items: list[str]) -> dict[str, float]:
    overrides: dict[str, float] = {}
    for item in items:
        kind, sep, share = item.partition("=")
        if not sep:
            raise SystemExit(f"--fault expects KIND=SHARE, got {item!r}")
        try:
            overrides[kind.strip()] = float(share)
        except ValueError:
            raise SystemExit(f"--fault {item!r}: share must be a number") from None
    return overrides


def _start_time(text: str) -> datetime:
    value = datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def run_simulate(args: argparse.Namespace) -> int:
    try:
        stream = parse_stream_url(args.stream)
        world_config = WorldConfig(users=args.users, movies=args.movies, seed=args.seed)
        faults = FaultConfig.build(args.faults, parse_fault_overrides(args.fault))
        config = SimConfig(
            seed=args.seed,
            events=args.events,
            days=args.days,
            start=_start_time(args.start),
            speed=args.speed,
            tick_seconds=args.tick,
            service=args.service,
            timeout=args.timeout_ms / 1000,
            concurrency=args.concurrency,
            rating_scale=args.rating_scale,
            result_separator=args.separator,
            oracle_share=args.oracle_share,
            request_faults=args.request_faults,
            faults=faults,
        )
    except ValueError as error:
        print(f"movierec simulate: {error}", file=sys.stderr)
        return 2
    world = World(world_config)
    api = _start_api(world, args.api_port, api_faults(args), args.api_control)
    sink = open_sink(stream)
    stop = threading.Event()
    previous = signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    progress = Progress("simulate", enabled=not args.quiet)
    try:
        sim = Simulation(world, config, sink, progress=progress)
        ledger = sim.run(should_stop=stop.is_set)
    finally:
        sink.close()
        signal.signal(signal.SIGINT, previous)
        if api is not None:
            ledger_api = api.stats()
            api.stop()
    if api is not None:
        ledger["api"] = ledger_api
    if args.ledger:
        args.ledger.parent.mkdir(parents=True, exist_ok=True)
        args.ledger.write_bytes(orjson.dumps(ledger, option=orjson.OPT_INDENT_2))
    summary = {k: ledger[k] for k in ("lines", "clean", "faults")}
    summary["recommendation_calls"] = ledger["recommendation_calls"]["by_status"]
    summary["online"] = {
        "service": ledger["online"].get("service", {}).get("share"),
        "oracle": ledger["online"].get("oracle", {}).get("share"),
    }
    print(orjson.dumps(summary).decode())
    if args.ledger and not args.quiet:
        print(
            f"movierec simulate: the site's user/movie API for this world (ingestion checks "
            f"movie ids with it): movierec site --ledger {args.ledger}",
            file=sys.stderr,
        )
    return 0


def _start_api(world: World, port: int, faults: ApiFaults, control: bool) -> SiteApiServer | None:
    if port == 0:
        return None
    server = SiteApiServer(world, port=port, faults=faults, control=control)
    try:
        server.start()
    except OSError as error:
        print(
            f"movierec simulate: the site API could not listen on port {port} ({error}); "
            "continuing without it (use --api-port to choose another port)",
            file=sys.stderr,
        )
        return None
    return server


def run_site(args: argparse.Namespace) -> int:
    if args.ledger:
        world_settings = orjson.loads(args.ledger.read_bytes())["world"]
        args.users, args.movies, args.seed = (
            world_settings["users"],
            world_settings["movies"],
            world_settings["seed"],
        )
    world = World(WorldConfig(users=args.users, movies=args.movies, seed=args.seed))
    print(
        f"movierec site: {args.users} users, {args.movies} movies (seed {args.seed}) "
        f"on http://127.0.0.1:{args.port}",
        file=sys.stderr,
    )
    serve_api(world, port=args.port, faults=api_faults(args), control=args.api_control)
    return 0
