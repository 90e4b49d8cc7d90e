"""Simulator benchmark: full-size world build (time, peak memory) and lines generated per
second into the local log. Prints one JSON object.

    .venv/bin/python bench/bench_sim.py [--events 2000000] [--quick]

Targets: full-size world (1M users x 27k movies) built in under 2 minutes and 4 GiB;
at least 200,000 lines/s into the local log.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_CHILD = """
import json, resource, sys, time
from movierec_sim.world import World, WorldConfig
users, movies = int(sys.argv[1]), int(sys.argv[2])
started = time.perf_counter()
world = World(WorldConfig(users=users, movies=movies, seed=1))
seconds = time.perf_counter() - started
doc = world.movie_json(world.movie_ids[0])
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
print(json.dumps({"seconds": round(seconds, 3), "peak_rss_gib": round(peak, 3)}))
"""


def world_build(users: int, movies: int) -> dict:
    """In a fresh process, so peak memory is the build's alone."""
    out = subprocess.run(
        [sys.executable, "-c", _CHILD, str(users), str(movies)],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)


def lines_per_second(users: int, movies: int, events: int, faults: float) -> dict:
    from movierec.stream.locallog import LocalLogSink
    from movierec_sim.engine import SimConfig, Simulation
    from movierec_sim.faults import FaultConfig
    from movierec_sim.world import World, WorldConfig

    world = World(WorldConfig(users=users, movies=movies, seed=1))
    with tempfile.TemporaryDirectory() as tmp:
        sink = LocalLogSink(Path(tmp) / "log")
        config = SimConfig(
            seed=1, events=events, faults=FaultConfig.build(faults), service="http://127.0.0.1:9"
        )
        started = time.perf_counter()
        ledger = Simulation(world, config, sink).run()
        seconds = time.perf_counter() - started
        sink.close()
        size = (Path(tmp) / "log").stat().st_size
    return {
        "users": users,
        "movies": movies,
        "lines": ledger["lines"],
        "faults": faults,
        "seconds": round(seconds, 3),
        "lines_per_second": round(ledger["lines"] / seconds),
        "megabytes": round(size / 1e6, 1),
        "calls": ledger["recommendation_calls"]["total"],
        "simulated_days": ledger["simulated"]["days"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    args = parser.parse_args()
    full = (20_000, 2_700) if args.quick else (1_000_000, 27_000)
    events = 100_000 if args.quick else args.events
    build = world_build(*full)
    result = {
        "benchmark": "simulator",
        "world_build": {
            "users": full[0],
            "movies": full[1],
            **build,
            "target_seconds": 120,
            "target_peak_rss_gib": 4,
        },
        "local_log": [
            lines_per_second(2_000, 500, events, 0.05),
            lines_per_second(*full, events, 0.05),
        ],
        "local_log_target_lines_per_second": 200_000,
        "note": "the service is not running (calls are refused at once), so the figures are "
        "the simulator's own cost",
        "bench_peak_rss_gib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 3),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
