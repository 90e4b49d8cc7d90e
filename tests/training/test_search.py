"""The search: spaces that only hold valid models, defaults first, the budget, the best
trial, NaN last, and the same settings for the same seed. Time is a fake clock that the
scoring function advances, so no test waits."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from movierec.models.kinds import MODELS, create
from movierec.training.search import SPACES, defaults, propose, record, search, study


class Clock:
    """Fake time: each scoring takes `step` seconds."""

    def __init__(self, step: float = 1.0) -> None:
        self.now, self.step = 0.0, step

    def __call__(self) -> float:
        return self.now

    def scorer(self, value: Callable[[str, dict[str, Any]], float]) -> Callable[..., float]:
        def score(model: str, params: dict[str, Any]) -> float:
            self.now += self.step
            return value(model, params)

        return score


def smooth(model: str, params: dict[str, Any]) -> float:
    """A deterministic score of the settings, with one best point per space."""
    total = 0.0
    for name, value in params.items():
        distribution = SPACES[model][name]
        if isinstance(value, str):
            total += 0.5 if value == "bm25" else 0.0
        else:
            low, high = distribution.low, distribution.high  # type: ignore[attr-defined]
            total -= abs((value - low) / (high - low) - 0.3)
    return total


def test_every_kind_has_a_space_and_its_defaults_lie_in_it() -> None:
    assert set(SPACES) == set(MODELS)
    for model, space in SPACES.items():
        values = defaults(model)
        assert list(values) == list(space)
        for name, distribution in space.items():
            assert distribution._contains(distribution.to_internal_repr(values[name]))


def test_als_space_covers_confidence_factors_regularization_and_iterations() -> None:
    als = SPACES["als"]
    spans = {name: (d.low, d.high, d.log) for name, d in als.items()}  # type: ignore[attr-defined]
    assert spans == {
        "factors": (32, 256, True),
        "regularization": (1e-3, 10.0, True),
        "alpha": (1.0, 100.0, True),
        "iterations": (10, 30, False),
    }


@pytest.mark.parametrize("model", sorted(SPACES))
def test_every_point_the_sampler_proposes_builds_a_valid_model(model: str) -> None:
    kind_study = study(model, seed=11)
    # Past the random start-up trials, into TPE's own proposals.
    for _ in range(40):
        trial, params = propose(model, kind_study)
        for name, value in params.items():
            distribution = SPACES[model][name]
            assert distribution._contains(distribution.to_internal_repr(value))
        create(model, **params)
        record(kind_study, trial, smooth(model, params))
    for corner in ("low", "high"):  # the ends of every range are valid too
        params = {
            name: getattr(d, corner) if hasattr(d, corner) else d.choices[0]  # type: ignore[attr-defined]
            for name, d in SPACES[model].items()
        }
        create(model, **params)


def test_a_tight_budget_still_scores_every_kind_at_its_defaults() -> None:
    clock = Clock()
    kinds = ["popularity", "als", "itemknn", "ease", "rp3beta", "bpr"]
    result = search(kinds, clock.scorer(smooth), "ndcg@20", budget_seconds=0.0, clock=clock)
    assert [t.model for t in result.trials] == kinds
    assert all(t.params == defaults(t.model) for t in result.trials)
    assert all(t.seconds == 1.0 for t in result.trials)


def test_kinds_take_turns_while_the_budget_lasts() -> None:
    clock = Clock()
    seen: list[dict] = []
    result = search(
        ["popularity", "als", "itemknn"],
        clock.scorer(smooth),
        "ndcg@20",
        budget_seconds=4.0,
        progress=lambda status, force=False: seen.append(status),
        clock=clock,
    )
    assert [t.model for t in result.trials] == ["popularity", "als", "itemknn", "popularity"]
    assert result.trials[3].params != defaults("popularity")
    assert [s["trial"] for s in seen] == [1, 2, 3, 4]
    assert result.to_json()["trials"][3]["params"] == result.trials[3].params


def test_the_best_trial_wins_and_nan_scores_rank_last() -> None:
    clock = Clock()
    scores = iter([float("nan"), 0.2, 0.5, 0.1])
    result = search(
        ["popularity"], clock.scorer(lambda m, p: next(scores)), "ndcg@20", 4.0, clock=clock
    )
    assert [t.score for t in result.trials][1:] == [0.2, 0.5, 0.1]
    assert result.best("popularity").score == 0.5
    clock = Clock()
    only_nan = search(
        ["ease"], clock.scorer(lambda m, p: float("nan")), "ndcg@20", 3.0, clock=clock
    )
    assert len(only_nan.trials) == 3 and math.isnan(only_nan.best("ease").score)


def test_the_same_seed_proposes_the_same_settings() -> None:
    def run(seed: int) -> list[dict[str, Any]]:
        clock = Clock()
        kinds = ["als", "rp3beta"]
        result = search(kinds, clock.scorer(smooth), "ndcg@20", 24.0, seed, clock=clock)
        return [t.params for t in result.trials]

    first = run(3)
    assert len(first) == 24 and run(3) == first
    assert run(4) != first


def test_the_sampler_learns_from_the_scores() -> None:
    # Best l2 near 100: TPE's own proposals (after the random start) close in on it.
    def peaked(model: str, params: dict[str, Any]) -> float:
        return -abs(math.log10(params["l2"]) - 2.0)

    clock = Clock()
    result = search(["ease"], clock.scorer(peaked), "ndcg@20", 40.0, seed=1, clock=clock)
    errors = [-t.score for t in result.trials]
    assert sum(errors[-10:]) / 10 < sum(errors[1:6]) / 5  # last ten against the random five
    assert -result.best("ease").score < 0.1
