"""The training pipeline at full size: build the matrix, train each kind at its defaults
(ALS with 64 factors, EASE, RP3beta, popularity), evaluate — time per stage, peak memory
and NDCG@20 against popularity. Prints one JSON object.

    .venv/bin/python bench/bench_pipeline.py [--users 1000000 --movies 27000 --pairs 27000000]
        [--models popularity,als,ease,rp3beta]

Target: the whole pipeline in 10 minutes and 8 GiB on 2 cores. The interactions come from
the world's tastes in bulk (`movierec_sim.bulk`): over a billion watch lines would be
needed to produce them through the log.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from typing import Any

import numpy as np
import pyarrow.compute as pc
import scipy.sparse as sp

from movierec.catalog.reader import Catalogue
from movierec.evaluation.offline import evaluate
from movierec.evaluation.split import Holdout
from movierec.features.feedback import build, columns_of, encode_movies
from movierec.models.kinds import create
from movierec_sim.bulk import interactions
from movierec_sim.world import World, WorldConfig

DAY_NS = 86_400 * 10**9
START = 1_735_689_600 * 10**9


def peak_gib() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)


def catalogue_of(world: World) -> Catalogue:
    """What the site's API would have told ingestion about every user and movie."""
    return Catalogue(
        user_ids=np.arange(1, world.n_users + 1, dtype=np.int64),
        user_age=world.user_age.astype(np.int16),
        user_gender=world.user_gender,
        user_occupation=world.user_occupation,
        movie_ids=np.array(world.movie_ids, dtype=object),
        movie_genres=world.movie_genre_mask,
        movie_year=world.movie_year.astype(np.int16),
        movie_runtime=world.movie_runtime.astype(np.int32),
    )


def holdout_of(test_pairs: Any, data: Any) -> Holdout:
    """The held-out relevance: each test pair of a movie the training knows and the user
    has not already watched in it (the rest counted as unknown)."""
    users = test_pairs.column("user_id").to_numpy().astype(np.int64)
    cols, known = columns_of(*encode_movies(test_pairs.column("movie_id")), data.item_ids)
    rows = data.user_rows(users)
    seen = np.zeros(len(users), bool)
    trained = (rows >= 0) & known
    seen[trained] = np.asarray(data.matrix[rows[trained], cols[trained]]).ravel() > 0
    keep = known & ~seen
    test_users, test_rows = np.unique(users[keep], return_inverse=True)
    relevant = sp.csr_matrix(
        (np.ones(keep.sum(), np.float32), (test_rows, cols[keep])),
        shape=(len(test_users), data.n_items),
    )
    return Holdout(test_users, relevant, int((~known).sum()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--movies", type=int, default=27_000)
    parser.add_argument("--pairs", type=int, default=27_000_000, help="interactions to draw")
    parser.add_argument("--days", type=float, default=60.0)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument(
        "--models", default="popularity,als,ease,rp3beta", help="kinds to train, at defaults"
    )
    args = parser.parse_args()
    stages: dict[str, Any] = {}
    clock = time.perf_counter()

    def stage(name: str, **figures: Any) -> None:
        nonlocal clock
        now = time.perf_counter()
        stages[name] = {"seconds": round(now - clock, 2), "peak_rss_gib": peak_gib(), **figures}
        clock = now

    world = World(WorldConfig(users=args.users, movies=args.movies, seed=1))
    pairs = interactions(world, args.pairs, args.days, START)
    stage("generate", interactions=pairs.num_rows)

    cut = START + int(args.days * 0.8 * DAY_NS)
    catalogue = catalogue_of(world)
    train_pairs = pairs.filter(pc.less(pairs.column("last_ns"), cut))
    data = build(train_pairs, catalogue, cut)
    stage("build_matrix", users=data.n_users, items=data.n_items, interactions=int(data.matrix.nnz))

    holdout = holdout_of(pairs.filter(pc.greater_equal(pairs.column("first_ns"), cut)), data)
    metrics = {}
    # One kind at a time, trained then evaluated then dropped: the peak is the largest
    # kind's, not their sum (peak_rss_gib after each stage is the process's so far).
    for name in args.models.split(","):
        params = {"factors": args.factors, "iterations": 15} if name == "als" else {}
        model = create(name, **params).fit(data)
        stage(f"train_{name}", **params)
        result = evaluate(model, data, holdout, catalogue)
        metrics[name] = {k: v for k, v in result.items() if k != "subpopulations"}
        stage(f"evaluate_{name}", test_users=len(holdout.user_ids))
        del model
    base = metrics.get("popularity", {}).get("ndcg@20")
    vs_popularity = {name: round(m["ndcg@20"] / base, 2) for name, m in metrics.items() if base}
    pipeline = sum(stages[s]["seconds"] for s in stages if s != "generate")
    print(
        json.dumps(
            {
                "benchmark": "training pipeline at full size",
                "world": {"users": args.users, "movies": args.movies},
                "stages": stages,
                "pipeline_seconds": round(pipeline, 1),
                "peak_rss_gib": peak_gib(),
                "metrics": metrics,
                "ndcg@20_vs_popularity": vs_popularity,
                "targets": {"pipeline_seconds": 600, "peak_rss_gib": 8},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
