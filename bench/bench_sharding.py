"""Sharded serving (`movierec serve --shard I/N` behind nginx, scripts/replicas.sh start
--shards N) on the largest simulated world a few minutes build on this 2-core machine:
each shard's resident memory at N = 1, 2, 4 beside the unsharded service's, and wrk's
throughput through the router against the unsharded service answered directly. Prints
one JSON object.

    .venv/bin/python bench/bench_sharding.py [--users 300000] [--movies 5000]
                                             [--pairs 6000000] [--seconds 10]

Memory is VmRSS after a warm-up that asks for every shard's users (so each process has
touched what it answers from), read from /proc. The lists alone are 160 bytes a user
(40 int32), the ALS factors 256 more, the history ~4 bytes an interaction; what no shard
can cut (the interpreter, numpy, the item side of the model, the popular and segment
lists) is the floor every shard pays.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers
from bench_replicas import replicas
from bench_serve import LUA, registry_for, serve

from movierec.registry.versions import Registry

READY_TIMEOUT = 900.0
CONNECTIONS = 64


def rss_mb(pid: int) -> float:
    return round(psutil.Process(pid).memory_info().rss / 2**20, 1)


def health(port: int) -> dict[str, Any]:
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
        return dict(json.load(answer))


def warm(port: int, users: int, seconds: float) -> None:
    peers.wrk(port, CONNECTIONS, seconds, LUA.format(users=users))


def unsharded(registry: Registry, users: int, seconds: int) -> dict[str, Any]:
    spec = serve(registry, peers.free_port())
    with peers.running(spec, "/healthz", timeout=READY_TIMEOUT) as process:
        warm(spec.port, users, 3)
        memory = rss_mb(process.pid)
        load = peers.wrk(spec.port, CONNECTIONS, seconds, LUA.format(users=users))
        held = health(spec.port)["shard"]
    return {"rss_mb": memory, "users": held["users"], "direct": load}


def sharded(registry: Registry, count: int, users: int, seconds: int, tmp: Path) -> dict[str, Any]:
    directory = tmp / f"shards-{count}"
    port = peers.free_port()
    started = time.monotonic()
    replicas("start", "--shards", str(count), "--models", str(registry.root), "--port",
             str(port), "--dir", str(directory), "--timeout", str(READY_TIMEOUT),
             "--", "--threads", "2")  # fmt: skip
    ready = round(time.monotonic() - started, 1)
    try:
        state = json.loads((directory / "replicas.json").read_text())
        warm(port, users, 3)
        shards = []
        for replica in state["replicas"]:
            held = health(replica["port"])["shard"]
            shards.append(
                {"shard": held["shard"], "users": held["users"], "rss_mb": rss_mb(replica["pid"])}
            )
        load = peers.wrk(port, CONNECTIONS, seconds, LUA.format(users=users))
        misrouted = sum(health(r["port"])["shard"]["misrouted"] for r in state["replicas"])
    finally:
        replicas("stop", "--dir", str(directory))
    memory = [s["rss_mb"] for s in shards]
    return {
        "ready_seconds": ready,
        "shards": shards,
        "rss_mb_max": max(memory),
        "rss_mb_total": round(sum(memory), 1),
        "through_router": load,
        "misrouted": misrouted,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=300_000)
    parser.add_argument("--movies", type=int, default=5000)
    parser.add_argument("--pairs", type=int, default=6_000_000)
    parser.add_argument("--seconds", type=int, default=10)
    args = parser.parse_args()
    result: dict[str, Any] = {"users": args.users, "movies": args.movies, "pairs": args.pairs}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        began = time.monotonic()
        registry = registry_for(tmp / "models", args.users, args.movies, args.pairs)
        result["build_seconds"] = round(time.monotonic() - began, 1)
        result["unsharded"] = unsharded(registry, args.users, args.seconds)
        for count in (1, 2, 4):
            result[f"shards_{count}"] = sharded(registry, count, args.users, args.seconds, tmp)
    whole = result["unsharded"]["rss_mb"]
    result["ratios"] = {
        f"shard_rss_at_{n}_vs_unsharded": round(result[f"shards_{n}"]["rss_mb_max"] / whole, 3)
        for n in (1, 2, 4)
    }
    direct = result["unsharded"]["direct"]["rps"]
    result["ratios"].update(
        {
            f"router_{n}_shards_rps_vs_direct": round(
                result[f"shards_{n}"]["through_router"]["rps"] / direct, 2
            )
            for n in (1, 2, 4)
        }
    )
    # rss = floor + state / N: what every shard pays, and what the shards divide.
    inverse = np.array([1.0, 0.5, 0.25])
    rss = np.array([result[f"shards_{n}"]["rss_mb_max"] for n in (1, 2, 4)])
    state, floor = np.polyfit(inverse, rss, 1)
    result["fit"] = {"floor_mb": round(float(floor), 1), "divided_mb": round(float(state), 1)}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
