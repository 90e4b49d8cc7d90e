"""Model training and recommending at the size of the site, on synthetic interactions.

    .venv/bin/python bench/bench_models.py [--users 1000000] [--items 27000]
        [--nnz 20000000] [--recommend-users 100000] [--k 20] [--models als,itemknn,...]

Builds a users x items matrix with heavy-tailed item popularity (Zipf-like) and user
activity (log-normal), one event per interaction over 60 days, and random demographics and
genres. Each model then runs in its own forked process (so that one model's memory does
not count against the next, and the data is shared copy-on-write): fit time, peak memory
(arrays alive during fit, and RSS growth above the data: VmHWM reset through
/proc/self/clear_refs), recommend time for random users (k=20), save/load time, size on
disk, and a check that the loaded model recommends the same. ALS also reports the fold-in
latency the serving layer pays to refresh one list.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from movierec.models.base import TrainingData
from movierec.models.kinds import create, load_model, save_model
from movierec.models.popularity import NS_PER_DAY
from movierec.vocab import GENRE_WEIGHTS, OCCUPATION_SHARES


def synthetic_data(users: int, items: int, nnz: int, seed: int) -> TrainingData:
    rng = np.random.default_rng(seed)
    item_weight = 1.0 / (rng.permutation(items) + 20.0)  # Zipf-like, shuffled over ids
    user_weight = rng.lognormal(0.0, 1.0, users)
    # Oversample pairs, drop repeats, then keep exactly nnz of the distinct ones (fewer if
    # the catalogue is too small for that many).
    draws = int(nnz * 1.2) + 1000
    rows = np.searchsorted(np.cumsum(user_weight / user_weight.sum()), rng.random(draws))
    cols = np.searchsorted(np.cumsum(item_weight / item_weight.sum()), rng.random(draws))
    keys = np.unique(np.minimum(rows, users - 1) * items + np.minimum(cols, items - 1))
    if len(keys) > nnz:
        keys = np.sort(keys[rng.permutation(len(keys))[:nnz]])
    rows, cols = (keys // items).astype(np.int32), (keys % items).astype(np.int32)
    del keys
    values = rng.integers(1, 5, len(rows)).astype(np.float32)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=users))])
    matrix = sp.csr_matrix((values, cols, indptr), shape=(users, items))
    now_ns = 1_750_000_000 * 10**9
    genres = np.zeros(items, dtype=np.int64)
    genre_p = np.array(GENRE_WEIGHTS) / sum(GENRE_WEIGHTS)
    for _ in range(2):  # one or two genres per movie
        genres |= 1 << rng.choice(len(genre_p), size=items, p=genre_p)
    job_p = np.array(OCCUPATION_SHARES) / sum(OCCUPATION_SHARES)
    return TrainingData(
        matrix=matrix,
        user_ids=np.arange(users, dtype=np.int64) * 7 + 1,
        item_ids=np.array([f"movie+{i}+{1950 + i % 70}" for i in range(items)], dtype=object),
        now_ns=now_ns,
        event_user=rows,
        event_item=cols,
        event_time_ns=now_ns - rng.integers(0, 60 * NS_PER_DAY, len(rows)),
        event_weight=values,
        user_age=np.where(rng.random(users) < 0.05, -1, rng.integers(13, 75, users)),
        user_gender=np.where(rng.random(users) < 0.05, -1, rng.integers(0, 2, users)),
        user_occupation=rng.choice(len(job_p), size=users, p=job_p),
        item_genres=genres,
    )


def memory_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def directory_mb(directory: Path) -> float:
    return sum(f.stat().st_size for f in directory.iterdir()) / 2**20


def run_model(name: str, params: dict[str, Any], data: TrainingData, args: Any) -> dict:
    rng = np.random.default_rng(args.seed + 1)
    users = rng.choice(data.user_ids, size=min(args.recommend_users, data.n_users), replace=False)
    result: dict[str, Any] = {"params": params}
    peak_known = reset_peak()
    before_kb = memory_kb("VmRSS")
    tracemalloc.start()
    started = time.perf_counter()
    model = create(name, **params).fit(data)
    result["fit_s"] = round(time.perf_counter() - started, 2)
    # numpy reports its buffers to tracemalloc: the peak of arrays alive during fit. RSS
    # growth can read lower, when the allocator reuses pages the process already holds.
    result["fit_peak_traced_mb"] = round(tracemalloc.get_traced_memory()[1] / 2**20, 1)
    tracemalloc.stop()
    if peak_known:
        result["fit_peak_rss_mb_above_data"] = round((memory_kb("VmHWM") - before_kb) / 1024, 1)
    started = time.perf_counter()
    lists = model.recommend(users, args.k)
    result["recommend_s"] = round(time.perf_counter() - started, 2)
    result["recommend_users"] = len(users)
    result["full_lists"] = float((lists >= 0).all(axis=1).mean())
    started = time.perf_counter()
    model.recommend(users[:1], args.k)
    result["recommend_one_ms"] = round((time.perf_counter() - started) * 1000, 2)
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch) / name
        started = time.perf_counter()
        save_model(model, directory)
        result["save_s"] = round(time.perf_counter() - started, 2)
        result["disk_mb"] = round(directory_mb(directory), 1)
        started = time.perf_counter()
        loaded = load_model(directory)
        result["load_s"] = round(time.perf_counter() - started, 3)
        check = users[:2000]
        result["loaded_identical"] = bool(
            (loaded.recommend(check, args.k) == lists[: len(check)]).all()
        )
    if name == "als":
        row = data.matrix[data.user_rows(users[:1])[0]]
        started = time.perf_counter()
        for _ in range(100):
            vector = model.user_vector(row.indices, row.data)  # type: ignore[attr-defined]
            model.score_vector(vector, row.indices, args.k)  # type: ignore[attr-defined]
        result["fold_in_and_score_one_ms"] = round((time.perf_counter() - started) * 10, 2)
    return result


def child(name: str, params: dict, data: TrainingData, args: Any, queue: Any) -> None:
    try:
        queue.put(run_model(name, params, data, args))
    except Exception as error:  # report it in the JSON rather than lose the whole run
        queue.put({"error": f"{type(error).__name__}: {error}"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=27_000)
    parser.add_argument("--nnz", type=int, default=20_000_000)
    parser.add_argument("--recommend-users", type=int, default=100_000)
    parser.add_argument("--k", type=int, default=20)
    parser.add_argument("--factors", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=15)
    parser.add_argument("--neighbours", type=int, default=100)
    parser.add_argument("--models", default="popularity,als,itemknn,coldstart")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    started = time.perf_counter()
    data = synthetic_data(args.users, args.items, args.nnz, args.seed)
    activity = np.diff(data.matrix.indptr)
    report: dict[str, Any] = {
        "data": {
            "users": data.n_users,
            "items": data.n_items,
            "nnz": int(data.matrix.nnz),
            "max_items_per_user": int(activity.max()),
            "users_without_history": int((activity == 0).sum()),
            "max_users_per_item": int(np.bincount(data.matrix.indices).max()),
            "generate_s": round(time.perf_counter() - started, 1),
            "rss_mb": round(memory_kb("VmRSS") / 1024),
        },
        "cores": len(os.sched_getaffinity(0)),
        "models": {},
    }
    params = {
        "popularity": {},
        "als": {"factors": args.factors, "iterations": args.iterations},
        "itemknn": {"neighbours": args.neighbours},
        "coldstart": {},
        "ease": {},
        "rp3beta": {"neighbours": args.neighbours},
        "bpr": {"factors": args.factors},
    }
    context = multiprocessing.get_context("fork")
    for name in args.models.split(","):
        queue = context.Queue()
        process = context.Process(target=child, args=(name, params[name], data, args, queue))
        process.start()
        report["models"][name] = queue.get()
        process.join()
        print(f"{name}: {report['models'][name]}", file=sys.stderr, flush=True)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
