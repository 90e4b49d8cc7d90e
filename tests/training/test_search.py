from __future__ import annotations

import time

from movierec.training.search import GRIDS, candidates, search, validate_grids


def test_defaults_come_first_and_every_grid_point_builds_a_model() -> None:
    for model in GRIDS:
        first = candidates(model, seed=3)[0]
        assert first == {name: values[0] for name, values in GRIDS[model].items()}
        assert len({tuple(sorted(c.items())) for c in candidates(model, 3)}) == len(
            candidates(model, 3)
        )
    validate_grids()


def test_a_tight_budget_still_scores_every_kind_at_its_defaults() -> None:
    def slow(model: str, params: dict) -> float:
        time.sleep(0.05)
        return float(len(params))

    result = search(["popularity", "als", "itemknn"], slow, "ndcg@20", budget_seconds=0.0)
    assert [t.model for t in result.trials] == ["popularity", "als", "itemknn"]
    assert all(t.params == candidates(t.model, 0)[0] for t in result.trials)


def test_the_best_trial_wins_and_nan_scores_rank_last() -> None:
    scores = iter([float("nan"), 0.2, 0.5])
    result = search(["popularity"], lambda m, p: next(scores), "ndcg@20", budget_seconds=60)
    assert result.best("popularity").score == 0.5
