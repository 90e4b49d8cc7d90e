"""The recommendation service under load: `movierec serve` driven by wrk over loopback on
this 2-core machine (server pinned to one core, wrk to the other), for a small world and
the full-size world; in the same run, the same service handler (RecommendationService.handle)
mounted in uvicorn (httptools, uvloop) and granian (RSGI and ASGI) at the same loads, with
the ratios; and an overload phase. Prints one JSON object.

    .venv/bin/python bench/bench_serve.py [--seconds 10] [--full-users 1000000] [--skip-full]
                                          [--overload 60]

Targets: >= 20,000 requests/s with p99 <= 10 ms (small world), p99 <= 50 ms at full size,
>= 1.3x the best Python server running the same handler (the issue's rule for keeping the
own HTTP core). wrk comes from Debian's packages (scripts/setup.sh installs it).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

from movierec.features.feedback import build
from movierec.models.kinds import create
from movierec.registry.versions import Registry
from movierec.training.pipeline import iso
from movierec_sim.bulk import interactions
from movierec_sim.world import World, WorldConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
import peers
from bench_pipeline import START, catalogue_of
from peer_apps import MODELS_VARIABLE

DAY_NS = 86_400 * 10**9
# Random users, the same sequence for every server.
LUA = """
math.randomseed(7)
request = function()
  return wrk.format("GET", "/recommend/" .. math.random(1, {users}))
end
"""
LOADS = [1, 4, 16, 64, 256]
PEER_LOADS = [64, 256]
KEEP_THRESHOLD = 1.3
# A full-size model takes minutes to build before the server answers /healthz.
READY_TIMEOUT = 900.0


def registry_for(root: Path, users: int, movies: int, pairs: int) -> Registry:
    """A registry whose production model is ALS (64 factors) on bulk interactions."""
    world = World(WorldConfig(users=users, movies=movies, seed=1))
    table = interactions(world, pairs, 30.0, START)
    end = START + 30 * DAY_NS
    data = build(table, catalogue_of(world), end)
    registry = Registry(root)
    provenance = {"data": {"from": iso(START), "to": iso(end)}}
    versions = {}
    for kind in ("popularity", "coldstart", "als"):
        model = create(kind, **({"factors": 64, "iterations": 10} if kind == "als" else {}))
        versions[kind] = registry.add(model.fit(data), provenance)
    registry.promote(versions["als"], "benchmark")
    return registry


def serve(registry: Registry, port: int) -> peers.Server:
    argv = [sys.executable, "-m", "movierec.cli", "serve", "--models", str(registry.root)]
    argv += ["--port", str(port), "--host", "127.0.0.1", "--threads", "2"]
    return peers.Server("movierec", argv, port, "movierec serve (movierec.http on uvloop)")


def peer_servers(registry: Registry) -> list[peers.Server]:
    """The same handler behind the strongest Python servers (bench/peer_apps.py)."""
    env = {MODELS_VARIABLE: str(registry.root)}
    return [
        peers.uvicorn(peers.free_port(), "peer_apps:service_asgi", env),
        peers.granian(peers.free_port(), "peer_apps:service_rsgi", "rsgi", env),
        peers.granian(peers.free_port(), "peer_apps:service_asgi", "asgi", env),
    ]


def measure(spec: peers.Server, users: int, loads: list[int], seconds: int) -> dict[str, Any]:
    """One server started fresh, warmed up, measured at each load, stopped."""
    script = LUA.format(users=users)
    with peers.running(spec, "/healthz", timeout=READY_TIMEOUT) as process:
        peers.wrk(spec.port, 64, 2, script)  # warm-up
        runs = [peers.wrk(spec.port, c, seconds, script) for c in loads]
        rss = psutil.Process(process.pid).memory_info().rss
    best = max(runs, key=lambda r: r["rps"])
    return {
        "server": spec.description,
        "loads": runs,
        "max_rps": best["rps"],
        "server_rss_gib": round(rss / 2**30, 2),
    }


def compare(ours: dict[str, Any], others: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Our request path over each peer at the loads both ran, and the verdict at 64."""
    ours_at = {run["connections"]: run["rps"] for run in ours["loads"]}
    ratios = {
        name: {
            str(run["connections"]): peers.ratio(ours_at[run["connections"]], run["rps"])
            for run in result["loads"]
            if run["connections"] in ours_at
        }
        for name, result in others.items()
    }
    at_64 = {
        name: next(r["rps"] for r in result["loads"] if r["connections"] == 64)
        for name, result in others.items()
        if any(r["connections"] == 64 for r in result["loads"])
    }
    best = max(at_64, key=lambda name: at_64[name]) if at_64 else None
    over_best = peers.ratio(ours_at[64], at_64[best]) if best and 64 in ours_at else None
    return {
        "ratios_by_connections": ratios,
        "best_python_server": best,
        "ratio_to_best_python": over_best,
        "keep_own_core": over_best is not None and over_best >= KEEP_THRESHOLD,
    }


def overload(registry: Registry, users: int, seconds: int, tmp: Path) -> dict[str, Any]:
    """Far more concurrent clients than the server can serve at once, for `seconds`: it must
    stay up with bounded memory, and its latency must come back afterwards."""
    spec = serve(registry, peers.free_port())
    script = LUA.format(users=users)
    (tmp / "overload.lua").write_text(script)
    with peers.running(spec, "/healthz", timeout=READY_TIMEOUT) as process:
        proc = psutil.Process(process.pid)
        before = peers.wrk(spec.port, 4, 5, script)
        peak_load = peers.wrk(spec.port, 64, 5, script)
        rss_start = proc.memory_info().rss
        cmd = ["taskset", "-c", str(peers.cpu(peers.LOAD_CPU)), peers.require("wrk"), "-t1"]
        cmd += ["-c2000", f"-d{seconds}s", "--timeout", "2s", "-s", str(tmp / "overload.lua")]
        load = subprocess.Popen(
            [*cmd, f"http://127.0.0.1:{spec.port}"], stdout=subprocess.PIPE, text=True
        )
        samples = []
        deadline = time.monotonic() + seconds + 60
        while load.poll() is None:
            if time.monotonic() > deadline:
                load.kill()
                load.wait()
                raise RuntimeError(f"wrk did not stop {seconds} s into the overload")
            samples.append(proc.memory_info().rss)
            time.sleep(1)
        out = load.stdout.read() if load.stdout else ""
        during = re.search(r"Requests/sec:\s+([\d.]+)", out)
        if during is None:
            raise RuntimeError(f"wrk printed no rate after the overload:\n{out}")
        after = peers.wrk(spec.port, 4, 5, script)
        alive = process.poll() is None
    return {
        "seconds": seconds,
        "connections": 2000,
        "rps_during": round(float(during.group(1))),
        "saturation_rps_64_connections": peak_load["rps"],
        "server_alive_after": alive,
        "rss_gib_start": round(rss_start / 2**30, 3),
        "rss_gib_max_during": round(max(samples, default=rss_start) / 2**30, 3),
        "light_load_before": before,
        "light_load_after": after,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10, help="per load level")
    parser.add_argument(
        "--duration", type=int, dest="seconds", help="the same as --seconds (a quick run: 2)"
    )
    parser.add_argument("--full-users", type=int, default=1_000_000)
    parser.add_argument("--full-pairs", type=int, default=20_000_000)
    parser.add_argument("--skip-full", action="store_true")
    parser.add_argument("--skip-peers", action="store_true", help="only movierec serve")
    parser.add_argument("--overload", type=int, default=60, help="seconds of overload")
    args = parser.parse_args()
    peers.require("wrk")
    if len(os.sched_getaffinity(0)) < 2:
        raise SystemExit("needs 2 CPUs: the servers run on one, wrk on the other")
    result: dict[str, Any] = {
        "benchmark": "serve",
        "load_tool": f"wrk {peers.wrk_version()}, 1 thread",
        "cpus": os.cpu_count(),
        "pinning": {
            "server_cpu": peers.cpu(peers.SERVER_CPU),
            "wrk_cpu": peers.cpu(peers.LOAD_CPU),
        },
    }
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        small = registry_for(tmp / "small", 2000, 500, 60_000)
        result["small"] = measure(serve(small, peers.free_port()), 2000, LOADS, args.seconds)
        if not args.skip_peers:
            others = {
                spec.name: measure(spec, 2000, PEER_LOADS, args.seconds)
                for spec in peer_servers(small)
            }
            result["peers"] = others
            result.update(compare(result["small"], others))
        result["overload"] = overload(small, 2000, args.overload, tmp)
        if not args.skip_full:
            full = registry_for(tmp / "full", args.full_users, 27_000, args.full_pairs)
            spec = serve(full, peers.free_port())
            result["full"] = measure(spec, args.full_users, LOADS, args.seconds)
    result["targets"] = {
        "small_rps": 20_000,
        "small_p99_ms": 10,
        "full_p99_ms": 50,
        "ratio_to_best_python": KEEP_THRESHOLD,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
