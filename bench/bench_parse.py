"""Log parsing throughput: the batch parser against the reference parser, in one run.

    .venv/bin/python bench/bench_parse.py [--lines 5000000] [--faults 0.05] [--batch 1000000]

Generates a log with the simulator (nothing listens on the recommendation service, so its
recommendation lines are failures), then times `batch.parse_batch` over it in batches
and `reference.parse_line` in a plain loop over the same lines, checks that both give the same
kind and reason on every line, and prints one JSON object: lines per second of each, the
ratio, and the numba compile time (cold: a fresh process with an empty cache) and cache load
time (a second fresh process on the cache the first filled: what a restarted service pays),
both excluded from the throughput.

Target: several million lines per second for parse_batch on one core, so that ingestion as a
whole sustains 1,000,000 lines/s.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence

import numpy as np

_FIRST_CALL = """
import time
started = time.perf_counter()
from movierec.logformat.batch import parse_batch
parse_batch([b"2025-01-01T00:00:00,1,GET /data/m/a+/1.mpg"])
print(time.perf_counter() - started)
"""


class ListSink:
    """A sink that keeps the simulator's lines in memory."""

    def __init__(self) -> None:
        self.lines: list[bytes] = []

    def write(self, values: Sequence[bytes]) -> None:
        self.lines.extend(values)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


def simulated_log(lines: int, faults: float, users: int, movies: int) -> list[bytes]:
    from movierec_sim.engine import SimConfig, Simulation
    from movierec_sim.faults import FaultConfig
    from movierec_sim.world import World, WorldConfig

    sink = ListSink()
    world = World(WorldConfig(users=users, movies=movies, seed=7))
    config = SimConfig(
        seed=7, events=lines, faults=FaultConfig.build(faults), service="http://127.0.0.1:9"
    )
    Simulation(world, config, sink).run()
    return sink.lines[:lines]


def first_call_seconds() -> tuple[float, float]:
    """Import plus first parse_batch in two fresh processes on one new numba cache: the first
    compiles the kernels (cold), the second loads what the first stored (warm)."""
    with tempfile.TemporaryDirectory() as cache:
        env = {**os.environ, "NUMBA_CACHE_DIR": cache}
        seconds = [
            subprocess.run(
                [sys.executable, "-c", _FIRST_CALL],
                check=True,
                capture_output=True,
                text=True,
                env=env,
            ).stdout
            for _ in range(2)
        ]
    cold, warm = (float(text.strip()) for text in seconds)
    return cold, warm


def codes(results: list[object]) -> tuple[np.ndarray, np.ndarray]:
    """(kind, reason) columns of reference results, coded as ParsedBatch codes them."""
    from movierec.logformat.reference import REASON_CODE, Reject

    kind = np.array([-1 if isinstance(r, Reject) else int(r.kind) for r in results])
    reason = np.array([REASON_CODE[r.reason] if isinstance(r, Reject) else -1 for r in results])
    return kind, reason


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lines", type=int, default=5_000_000)
    parser.add_argument("--faults", type=float, default=0.05, help="share of dirty lines")
    parser.add_argument("--batch", type=int, default=1_000_000, help="lines per parse_batch")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--movies", type=int, default=27_000, help="the real catalogue size")
    parser.add_argument("--repeats", type=int, default=3, help="passes of parse_batch")
    args = parser.parse_args()

    compile_s, cache_load_s = first_call_seconds()
    from movierec.logformat.batch import parse_batch
    from movierec.logformat.reference import KIND_NAMES, REASONS, parse_line

    started = time.perf_counter()
    lines = simulated_log(args.lines, args.faults, args.users, args.movies)
    generate_s = time.perf_counter() - started
    batches = [lines[k : k + args.batch] for k in range(0, len(lines), args.batch)]
    parse_batch(batches[0][:1000], 5)  # load the kernels outside the timing

    passes = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        parsed = [parse_batch(batch) for batch in batches]
        passes.append(time.perf_counter() - started)

    reference_s = 0.0
    agree = True
    for batch, fast in zip(batches, parsed, strict=True):
        started = time.perf_counter()
        results = [parse_line(raw) for raw in batch]
        reference_s += time.perf_counter() - started
        kind, reason = codes(results)
        agree &= bool(np.array_equal(kind, fast.kind) and np.array_equal(reason, fast.reason))

    mix: Counter[str] = Counter()
    for fast in parsed:
        for code, count in zip(*np.unique(fast.kind, return_counts=True), strict=True):
            mix[KIND_NAMES[code] if code >= 0 else "rejected"] += int(count)
        for code, count in zip(*np.unique(fast.reason, return_counts=True), strict=True):
            if code >= 0:
                mix[f"rejected:{REASONS[code]}"] += int(count)
    n = len(lines)
    fast_rate = n / min(passes)
    reference_rate = n / reference_s
    report = {
        "lines": n,
        "mean_bytes": round(sum(map(len, lines)) / n, 1),
        "batch": args.batch,
        "mix": {k: round(v / n, 4) for k, v in sorted(mix.items())},
        "generate_s": round(generate_s, 1),
        "fastparse_lines_per_s": round(fast_rate),
        "fastparse_lines_per_s_median": round(n / statistics.median(passes)),
        "reference_lines_per_s": round(reference_rate),
        "ratio": round(fast_rate / reference_rate, 1),
        "compile_s": round(compile_s, 2),
        "cache_load_s": round(cache_load_s, 2),
        "agree": agree,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
