"""The two ALS engines of `movierec train` on the same data, at three sizes of the world.

    .venv/bin/python bench/bench_engines.py [--sizes small,medium,full]
        [--spark-master local[2]] [--spark-driver-memory 8g] [--factors 64]

Per size: a simulated world (movierec_sim), its interactions drawn in bulk from the
world's tastes (as bench/bench_pipeline.py does), the training matrix built by the same
features code as training (trust weighting does not apply here: no accounts are
unproven in bulk draws), and a time split (the last 20% of the days held out). Each engine
then fits ALS at the same settings (64 factors, 15 iterations, the defaults otherwise) in
its own forked process: fit seconds (for Spark also the session's start, reported
apart), peak RSS of that process tree, the JVM included (sampled every 0.1 s; the data
shared with the parent counts in it), and NDCG@20 on the held-out split, through the same
evaluation as training. Prints one JSON object.

    small    20k users x 2.7k movies, 600k interactions
    medium   100k users x 9k movies, 3M interactions
    full     1M users x 27k movies, 27M interactions (the full-size world)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import multiprocessing.connection
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import pyarrow.compute as pc

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_pipeline import DAY_NS, START, catalogue_of, holdout_of

from movierec.evaluation.offline import evaluate
from movierec.evaluation.split import Holdout
from movierec.features.feedback import build
from movierec.models.als import ALSRecommender, Params
from movierec_sim.bulk import interactions
from movierec_sim.world import World, WorldConfig

SIZES = {
    "small": (20_000, 2_700, 600_000),
    "medium": (100_000, 9_000, 3_000_000),
    "full": (1_000_000, 27_000, 27_000_000),
}
DAYS = 60.0


def world_data(users: int, movies: int, pairs: int) -> tuple[Any, Holdout, Any]:
    """(training data, held-out split, catalogue) of a world of this size."""
    world = World(WorldConfig(users=users, movies=movies, seed=1))
    drawn = interactions(world, pairs, DAYS, START)
    cut = START + int(DAYS * 0.8 * DAY_NS)
    catalogue = catalogue_of(world)
    data = build(drawn.filter(pc.less(drawn.column("last_ns"), cut)), catalogue, cut)
    test = drawn.filter(pc.greater_equal(drawn.column("first_ns"), cut))
    return data, holdout_of(test, data), catalogue


def run_engine(
    engine: str, args: argparse.Namespace, data: Any, holdout: Holdout, catalogue: Any, out: Any
) -> None:
    """In the forked child: fit on `engine`, evaluate, send the figures."""
    params = Params(factors=args.factors, iterations=15)
    figures: dict[str, Any] = {}
    if engine == "numpy":
        began = time.perf_counter()
        model = ALSRecommender(params).fit(data)
        figures["fit_seconds"] = round(time.perf_counter() - began, 2)
    else:
        from movierec.training.spark_als import fit_spark_als
        from movierec.training.spark_session import SparkConfig, spark_session

        config = SparkConfig(master=args.spark_master, driver_memory=args.spark_driver_memory)
        began = time.perf_counter()
        with spark_session(config) as spark:
            figures["session_start_seconds"] = round(time.perf_counter() - began, 2)
            figures["spark_version"] = spark.version
            began = time.perf_counter()
            model = fit_spark_als(spark, params, data)
            figures["fit_seconds"] = round(time.perf_counter() - began, 2)
    report = evaluate(model, data, holdout, catalogue)
    figures["ndcg@20"] = round(float(report["ndcg@20"]), 4)
    figures["recall@20"] = round(float(report.get("recall@20", float("nan"))), 4)
    out.send(figures)


def tree_rss(process: psutil.Process) -> int:
    total = 0
    for member in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.NoSuchProcess):  # gone between listing and reading
            total += member.memory_info().rss
    return total


def measure(
    engine: str, args: argparse.Namespace, data: Any, holdout: Holdout, catalogue: Any
) -> dict[str, Any]:
    """One engine in a forked child, its process tree's peak RSS sampled from here."""
    context = multiprocessing.get_context("fork")
    receive, send = context.Pipe(duplex=False)
    child = context.Process(target=run_engine, args=(engine, args, data, holdout, catalogue, send))
    child.start()
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        process = psutil.Process(child.pid)
        while not done.is_set():
            try:
                peak = max(peak, tree_rss(process))
            except psutil.NoSuchProcess:
                return
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    figures = receive.recv() if receive.poll(timeout=3 * 3600) else {"error": "no answer"}
    child.join()
    done.set()
    sampler.join()
    return {**figures, "peak_rss_gib": round(peak / 2**30, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="small,medium", help=f"of {', '.join(SIZES)}")
    parser.add_argument("--spark-master", default="local[2]")
    parser.add_argument("--spark-driver-memory", default="8g")
    parser.add_argument("--factors", type=int, default=64)
    args = parser.parse_args()
    results: dict[str, Any] = {}
    for size in args.sizes.split(","):
        users, movies, pairs = SIZES[size]
        began = time.perf_counter()
        data, holdout, catalogue = world_data(users, movies, pairs)
        results[size] = {
            "users": data.n_users,
            "movies": data.n_items,
            "interactions": int(data.matrix.nnz),
            "test_users": len(holdout.user_ids),
            "data_seconds": round(time.perf_counter() - began, 1),
            "data_rss_gib": round(psutil.Process().memory_info().rss / 2**30, 2),
            "engines": {e: measure(e, args, data, holdout, catalogue) for e in ("numpy", "spark")},
        }
        print(json.dumps({size: results[size]}), file=sys.stderr)  # progress, size by size
    print(
        json.dumps(
            {
                "benchmark": "ALS engines: numpy (implicit) and Spark MLlib",
                "spark_master": args.spark_master,
                "cores": psutil.cpu_count(),
                "factors": args.factors,
                "iterations": 15,
                "sizes": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
