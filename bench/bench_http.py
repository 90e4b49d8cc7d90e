"""Micro-benchmark: movierec's HTTP core against the strongest Python servers and nginx.

In one run, with the same pinning (each server on the first CPU with taskset, wrk on the
second), the same connections and the same fixed body on the same path: movierec's core
with a trivial handler; uvicorn with httptools and uvloop (a raw ASGI app, 1 worker, access
log off); granian (1 worker, 1 runtime thread) on RSGI, its native interface, and on ASGI;
and nginx `return 200` (1 worker process), the practical limit. Each server is started
fresh, checked to answer the body, warmed up, measured and stopped. Prints one JSON object
with each server's req/s, p50/p99/p99.9 and errors, the ratios, and the verdict of the
issue's rule: keep the own core only while it is at least 1.3x the best Python server.

    .venv/bin/python bench/bench_http.py [--duration 10] [--connections 64]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers
from peer_apps import BODY

KEEP_THRESHOLD = 1.3
PYTHON_SERVERS = ("uvicorn", "granian_rsgi", "granian_asgi")
ALL_SERVERS = ("movierec", *PYTHON_SERVERS, "nginx")


def server(name: str, port: int) -> peers.Server:
    if name == "movierec":
        return peers.ours(port)
    if name == "uvicorn":
        return peers.uvicorn(port, "peer_apps:fixed_asgi")
    if name == "granian_rsgi":
        return peers.granian(port, "peer_apps:fixed_rsgi", "rsgi")
    if name == "granian_asgi":
        return peers.granian(port, "peer_apps:fixed_asgi", "asgi")
    if name == "nginx":
        return peers.nginx(port, BODY)
    raise ValueError(f"unknown server {name!r}: expected one of {', '.join(ALL_SERVERS)}")


def measure(name: str, args: argparse.Namespace) -> dict[str, Any]:
    spec = server(name, peers.free_port())
    with peers.running(spec, args.path, body=BODY):
        peers.wrk(spec.port, args.connections, args.warmup, path=args.path)
        result = peers.wrk(spec.port, args.connections, args.duration, path=args.path)
    return {"server": spec.description, **result}


def verdict(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Ratios of our core to each peer, and whether it still earns its place."""
    ours = results.get("movierec")
    pythons = {name: results[name]["rps"] for name in PYTHON_SERVERS if name in results}
    if ours is None:
        return {"ratios": None, "verdict": None}
    ratios: dict[str, Any] = {
        f"movierec_over_{name}": peers.ratio(ours["rps"], result["rps"])
        for name, result in results.items()
        if name != "movierec"
    }
    answer: dict[str, Any] = {"ratios": ratios, "best_python_server": None, "verdict": None}
    if pythons:
        best = max(pythons, key=lambda name: pythons[name])
        over_best = peers.ratio(ours["rps"], pythons[best])
        ratios["movierec_over_best_python"] = over_best
        answer["best_python_server"] = best
        keep = over_best is not None and over_best >= KEEP_THRESHOLD
        answer["verdict"] = {
            "rule": f"keep the own core only while >= {KEEP_THRESHOLD}x the best Python server",
            "threshold": KEEP_THRESHOLD,
            "ratio": over_best,
            "keep_own_core": keep,
            "says": (
                f"keep movierec's core: {over_best}x {best}"
                if keep
                else f"switch to {best}: movierec's core is only {over_best}x it"
            ),
        }
    return answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per server")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--path", default="/recommend/12345")
    parser.add_argument(
        "--servers",
        default=",".join(ALL_SERVERS),
        help=f"comma-separated subset of {','.join(ALL_SERVERS)}",
    )
    args = parser.parse_args()
    names = [name.strip() for name in args.servers.split(",") if name.strip()]
    unknown = sorted(set(names) - set(ALL_SERVERS))
    if unknown:
        parser.error(f"unknown servers {unknown}: expected some of {', '.join(ALL_SERVERS)}")
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs 2 CPUs: the servers run on one, wrk on the other")
    started = time.monotonic()
    results = {name: measure(name, args) for name in names}
    report = {
        "benchmark": "http",
        "load_tool": f"wrk {peers.wrk_version()}, 1 thread",
        "pinning": {
            "server_cpu": peers.cpu(peers.SERVER_CPU),
            "wrk_cpu": peers.cpu(peers.LOAD_CPU),
        },
        "connections": args.connections,
        "duration_s": args.duration,
        "warmup_s": args.warmup,
        "path": args.path,
        "body_bytes": len(BODY),
        "servers": results,
        **verdict(results),
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
