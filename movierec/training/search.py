"""Hyperparameter search on a validation split, within a time budget.

Each model kind has a small grid; its default settings are tried first, then the rest in
a seeded random order while the budget lasts, so a tight budget still compares every
kind at its defaults. Scores are a validation metric: the test split is never looked at.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from movierec.models.kinds import create

GRIDS: dict[str, dict[str, list[Any]]] = {
    "popularity": {"half_life_days": [14.0, 3.0, 60.0]},
    "als": {
        "factors": [64, 32, 128],
        "regularization": [0.01, 0.1, 1.0],
        "alpha": [1.0, 10.0, 40.0],
        "iterations": [15],
    },
    "itemknn": {
        "neighbours": [100, 50, 300],
        "shrinkage": [10.0, 0.0, 50.0],
        "weighting": ["none", "bm25"],
    },
    "coldstart": {"popularity_weight": [0.3, 0.1, 0.6]},
}


@dataclass
class Trial:
    model: str
    params: dict[str, Any]
    score: float
    seconds: float


@dataclass
class SearchResult:
    metric: str
    trials: list[Trial] = field(default_factory=list)

    def best(self, model: str) -> Trial:
        return max((t for t in self.trials if t.model == model), key=lambda t: _key(t.score))

    def to_json(self) -> dict[str, Any]:
        return {"metric": self.metric, "trials": [t.__dict__ for t in self.trials]}


def _key(score: float) -> float:
    return -np.inf if math.isnan(score) else score  # NaN (no test users) ranks last


def candidates(model: str, seed: int) -> list[dict[str, Any]]:
    """The model's defaults first, then the rest of its grid in a seeded random order."""
    grid = GRIDS.get(model, {})
    names = list(grid)
    combos = [
        dict(zip(names, values, strict=True))
        for values in itertools.product(*(grid[n] for n in names))
    ]
    if not combos:
        return [{}]
    first, rest = combos[0], combos[1:]
    order = np.random.default_rng(seed).permutation(len(rest))
    return [first, *(rest[i] for i in order)]


def search(
    models: list[str],
    score: Callable[[str, dict[str, Any]], float],
    metric: str,
    budget_seconds: float,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
) -> SearchResult:
    """Score candidates round-robin across model kinds until the budget is spent (every
    kind's defaults are always scored)."""
    result = SearchResult(metric)
    queues = {m: candidates(m, seed) for m in models}
    started = time.monotonic()
    for round_ in itertools.count():
        pending = [m for m in models if round_ < len(queues[m])]
        if not pending or (round_ > 0 and time.monotonic() - started > budget_seconds):
            break
        for model in pending:
            if round_ > 0 and time.monotonic() - started > budget_seconds:
                break
            params = queues[model][round_]
            began = time.monotonic()
            value = score(model, params)
            result.trials.append(Trial(model, params, value, round(time.monotonic() - began, 3)))
            if progress is not None:
                progress(
                    {"trial": len(result.trials), "model": model, "params": params, metric: value},
                    force=True,
                )  # type: ignore[call-arg]
    return result


def validate_grids() -> None:
    """Every grid point builds a valid model (checked by the tests)."""
    for model in GRIDS:
        for params in candidates(model, 0):
            create(model, **params)
