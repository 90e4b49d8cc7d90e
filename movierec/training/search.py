"""Hyperparameter search on a validation split, within a time budget.

Each model kind has a typed search space (SPACES: integer and real ranges, log-scaled where
the effect of a value is multiplicative, and categorical choices). A kind's defaults are
scored first; after that one optuna study per kind proposes each next setting with TPE
(a tree-structured Parzen estimator: it models which settings scored well and which badly,
and samples where the ratio is best), seeded, so a fixed seed and a fixed number of trials
give the same settings. Kinds take turns, round robin, while the budget lasts, so a tight
budget still compares every kind at its defaults. Scores are a validation metric: the test
split is never looked at. A NaN score (no validation users) is told to the study as a
failed trial, which TPE leaves out, and ranks last.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState

from movierec.models.kinds import model_class

SPACES: dict[str, dict[str, BaseDistribution]] = {
    "popularity": {"half_life_days": FloatDistribution(1.0, 180.0, log=True)},
    "als": {
        "factors": IntDistribution(32, 256, log=True),
        "regularization": FloatDistribution(1e-3, 10.0, log=True),
        "alpha": FloatDistribution(1.0, 100.0, log=True),  # confidence = alpha x value
        "iterations": IntDistribution(10, 30),
    },
    "itemknn": {
        "neighbours": IntDistribution(20, 500, log=True),
        "shrinkage": FloatDistribution(0.0, 100.0),
        "weighting": CategoricalDistribution(["none", "bm25"]),
    },
    "coldstart": {"popularity_weight": FloatDistribution(0.0, 1.0)},
    "ease": {"l2": FloatDistribution(10.0, 10_000.0, log=True)},
    "rp3beta": {
        "alpha": FloatDistribution(0.2, 1.5),
        "beta": FloatDistribution(0.0, 1.0),
        "neighbours": IntDistribution(50, 500, log=True),
    },
    "bpr": {
        "factors": IntDistribution(32, 256, log=True),
        "learning_rate": FloatDistribution(1e-3, 0.1, log=True),
        "regularization": FloatDistribution(1e-4, 0.1, log=True),
        "iterations": IntDistribution(50, 300),
    },
    # Nothing to search: trying seeds would only select the luckiest random lists.
    "random": {},
    # Nothing to search: the slow kind exists to answer late, not to be tuned.
    "slow": {},
}

# TPE samples at random until this many trials are scored (the defaults count): a few,
# since on a full data set a kind gets only a handful of trials within the budget.
STARTUP_TRIALS = 5


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


def defaults(model: str) -> dict[str, Any]:
    """The kind's default value of every hyperparameter its space searches."""
    params = model_class(model).Params()
    return {name: getattr(params, name) for name in SPACES.get(model, {})}


def study(model: str, seed: int) -> optuna.Study:
    """The kind's study: seeded TPE, maximising, its first trial the kind's defaults."""
    # Optuna logs every trial at INFO; the search reports through `progress` instead.
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(
        seed=seed, n_startup_trials=STARTUP_TRIALS, multivariate=True
    )
    created = optuna.create_study(direction="maximize", sampler=sampler)
    created.enqueue_trial(defaults(model))
    return created


def propose(model: str, kind_study: optuna.Study) -> tuple[optuna.Trial, dict[str, Any]]:
    """The study's next trial and its hyperparameters, in the order of the space."""
    space = SPACES.get(model, {})
    trial = kind_study.ask(space)
    return trial, {name: trial.params[name] for name in space}


def record(kind_study: optuna.Study, trial: optuna.Trial, score: float) -> None:
    if math.isnan(score):
        kind_study.tell(trial, state=TrialState.FAIL)
    else:
        kind_study.tell(trial, score)


def search(
    models: list[str],
    score: Callable[[str, dict[str, Any]], float],
    metric: str,
    budget_seconds: float,
    seed: int = 0,
    progress: Callable[[dict], None] | None = None,
    *,
    clock: Callable[[], float] = time.monotonic,
) -> SearchResult:
    """Score settings round-robin across model kinds until the budget is spent (every
    kind's defaults are always scored, even with a budget of 0; a kind without a space
    only its defaults)."""
    result = SearchResult(metric)
    studies = {m: study(m, seed) for m in models}
    started = clock()

    def spent() -> bool:
        return clock() - started >= budget_seconds

    for round_ in itertools.count():
        pending = [m for m in models if round_ == 0 or SPACES.get(m)]
        if not pending or (round_ > 0 and spent()):
            break
        for model in pending:
            if round_ > 0 and spent():
                break
            trial, params = propose(model, studies[model])
            began = clock()
            value = score(model, params)
            record(studies[model], trial, value)
            result.trials.append(Trial(model, params, value, round(clock() - began, 3)))
            if progress is not None:
                progress(
                    {"trial": len(result.trials), "model": model, "params": params, metric: value},
                    force=True,
                )  # type: ignore[call-arg]
    return result
