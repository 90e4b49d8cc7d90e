"""Offline-evaluation metrics benchmark: the vectorised metrics on 1M users x k=20 beside the
loop-based reference implementations (timed on a subsample, reported per user and scaled up
to the full population). Prints one JSON object.

    .venv/bin/python bench/bench_metrics.py [--users 1000000] [--k 20] [--reference-users 5000]

Target: `summarize` over 1,000,000 users x k=20 with ~5 relevant items each in well under
10 seconds on a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.sparse as sp

from movierec.evaluation import metrics as m
from movierec.evaluation import reference as ref


def make_problem(users: int, k: int, items: int, seed: int) -> dict[str, Any]:
    """Lists and held-out items both drawn from a Zipf-like popularity, so hits are common
    enough to matter (~15% of users), lists repeat items now and then, and 5% of lists are
    short and -1 padded."""
    rng = np.random.default_rng(seed)
    popularity = 1.0 / np.arange(1, items + 1) ** 0.8
    popularity /= popularity.sum()
    recommended = rng.choice(items, size=(users, k), p=popularity)
    short = rng.random(users) < 0.05
    lengths = rng.integers(0, k, size=users)
    recommended[short[:, None] & (np.arange(k)[None, :] >= lengths[:, None])] = -1
    counts = rng.poisson(5, size=users)
    indptr = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    indices = rng.choice(items, size=int(indptr[-1]), p=popularity)
    grades = rng.integers(1, 6, size=indices.size).astype(np.float64)
    interactions = np.bincount(indices, minlength=items).astype(np.float64)
    return {
        "recommended": recommended,
        "relevance": m.Relevance(indptr, indices, grades),
        "interactions": interactions,
        "items": items,
    }


def timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    """Best and median of `repeat` runs: the machine is shared, the best is the signal."""
    runs = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - started)
    return {"best_s": round(min(runs), 3), "median_s": round(statistics.median(runs), 3)}


def reference_per_user(problem: dict[str, Any], k: int, sample: int) -> dict[str, Any]:
    rel = problem["relevance"]
    lists = problem["recommended"][:sample].tolist()
    cut = int(rel.indptr[sample])
    dicts = ref.relevant_per_user(rel.indptr[: sample + 1].tolist(), rel.indices[:cut].tolist())
    started = time.perf_counter()
    values: dict[str, list[float]] = {name: [] for name in ("ndcg", "recall", "ap", "mrr")}
    for lst, relevant in zip(lists, dicts, strict=True):
        values["ndcg"].append(ref.ndcg(lst, relevant, k))
        values["recall"].append(ref.recall(lst, relevant, k))
        values["ap"].append(ref.average_precision(lst, relevant, k))
        ref.hit_rate(lst, relevant, k)
        ref.precision(lst, relevant, k)
        values["mrr"].append(ref.reciprocal_rank(lst, relevant, k))
    seconds = time.perf_counter() - started
    # The same subsample through the fast path must agree, or the timings mean nothing.
    fast = m.per_user_metrics(problem["recommended"][:sample], _head(rel, sample), k)
    agrees = all(
        np.allclose(fast[f"{name}@{k}"], values[short], equal_nan=True)
        for name, short in (("ndcg", "ndcg"), ("recall", "recall"), ("map", "ap"), ("mrr", "mrr"))
    )
    return {"users": sample, "seconds": round(seconds, 3), "agrees_with_fast": agrees,
            "us_per_user": round(seconds / sample * 1e6, 2)}  # fmt: skip


def _head(rel: m.Relevance, users: int) -> m.Relevance:
    cut = int(rel.indptr[users])
    return m.Relevance(rel.indptr[: users + 1], rel.indices[:cut], rel.grades[:cut])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--reference-users", type=int, default=5_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    p = make_problem(args.users, args.k, args.items, args.seed)
    rec, rel, k, items, pop = (
        p["recommended"],
        p["relevance"],
        args.k,
        p["items"],
        p["interactions"],
    )
    binary = m.Relevance(rel.indptr, rel.indices)
    matrix = sp.csr_matrix((rel.grades, rel.indices, rel.indptr), shape=(args.users, items))
    fast = {
        "summarize": timed(lambda: m.summarize(rec, binary, items, pop, k), args.repeat),
        "per_user_metrics": timed(lambda: m.per_user_metrics(rec, binary, k), args.repeat),
        "ndcg_at_k": timed(lambda: m.ndcg_at_k(rec, binary, k), args.repeat),
        "ndcg_at_k_graded": timed(lambda: m.ndcg_at_k(rec, rel, k, graded=True), args.repeat),
        "ndcg_at_k_scipy_csr": timed(lambda: m.ndcg_at_k(rec, matrix, k), args.repeat),
        "recall_at_k": timed(lambda: m.recall_at_k(rec, binary, k), args.repeat),
        "recommendation_counts": timed(lambda: m.recommendation_counts(rec, items, k), 1),
    }
    groups = np.arange(args.users) % 7
    per_user = m.per_user_metrics(rec, binary, k)
    fast["breakdown_7_groups"] = timed(lambda: m.breakdown(per_user, groups), 1)
    reference = reference_per_user(p, k, min(args.reference_users, args.users))
    reference_total = reference["us_per_user"] * args.users / 1e6
    print(
        json.dumps(
            {
                "users": args.users,
                "k": k,
                "items": items,
                "relevant_per_user": round(rel.indices.size / args.users, 2),
                "summary": m.summarize(rec, binary, items, pop, k),
                "fast": fast,
                "reference": reference,
                "reference_all_users_estimated_s": round(reference_total, 1),
                "speedup_vs_reference": round(reference_total / fast["per_user_metrics"]["best_s"]),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
