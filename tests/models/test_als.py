"""ALS: the contract, planted structure, and folding in a fresh history."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from movierec.models.als import ALSRecommender
from movierec.models.base import TrainingData
from movierec.models.kinds import load_model, save_model
from tests.models.contract import HALF, RecommenderContract, planted_data


def make_als() -> ALSRecommender:
    # Two latent groups in the data: a few factors, firm regularisation.
    return ALSRecommender(factors=2, regularization=1.0, alpha=2.0, iterations=20, random_state=3)


class TestALS(RecommenderContract):
    bad_params: ClassVar[tuple[dict[str, object], ...]] = (
        {"factors": 0},
        {"factors": 2.5},
        {"factors": True},
        {"regularization": -0.1},
        {"regularization": float("nan")},
        {"alpha": 0.0},
        {"alpha": float("inf")},
        {"iterations": 0},
        {"random_state": -1},
        {"num_threads": -1},
        {"calculate_training_loss": "yes"},
        {"fallback_half_life_days": 0.0},
    )

    def make(self) -> ALSRecommender:
        return make_als()


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return planted_data()


@pytest.fixture(scope="module")
def model(data: TrainingData) -> ALSRecommender:
    return make_als().fit(data)


def test_recommends_within_the_users_block(model: ALSRecommender, data: TrainingData) -> None:
    lists = model.recommend(data.user_ids[:28], 5)
    assert (lists[:14] < HALF).all()
    assert (lists[14:] >= HALF).all()


def history(data: TrainingData, row: int) -> tuple[np.ndarray, np.ndarray]:
    entries = data.matrix[row]
    return entries.indices.astype(np.int64), entries.data


def test_user_vector_of_own_history_is_close_to_trained_factor(
    model: ALSRecommender, data: TrainingData
) -> None:
    assert model.user_factors is not None
    for row in range(28):
        folded = model.user_vector(*history(data, row))
        trained = model.user_factors[row]
        # Training's last user step used the previous item factors and a few CG steps;
        # the fold-in is the exact solve against the final ones: close, not equal.
        assert np.linalg.norm(folded - trained) <= 0.1 * np.linalg.norm(trained)


def test_score_vector_of_trained_factor_matches_recommend(
    model: ALSRecommender, data: TrainingData
) -> None:
    assert model.user_factors is not None
    for row in (0, 5, 20):
        items, _ = history(data, row)
        listed = model.score_vector(model.user_factors[row], items, 10)
        assert listed.tolist() == model.recommend(data.user_ids[row : row + 1], 10)[0].tolist()


def test_new_items_change_the_list_without_retraining(
    model: ALSRecommender, data: TrainingData
) -> None:
    items, weights = history(data, 0)  # a user of the first block
    before = model.score_vector(model.user_vector(items, weights), items, 5)
    assert (before < HALF).all()
    added = np.array([HALF, HALF + 1, HALF + 2, HALF + 3])  # binge on the other block
    items = np.concatenate([items, added])
    weights = np.concatenate([weights, np.full(len(added), 30.0)])
    after = model.score_vector(model.user_vector(items, weights), items, 5)
    assert after.tolist() != before.tolist()
    assert (after >= HALF).any()
    assert not set(after.tolist()) & set(items.tolist())


def test_repeated_items_add_up(model: ALSRecommender) -> None:
    twice = model.user_vector(np.array([3, 3, 7]), np.array([1.0, 2.0, 1.0]))
    once = model.user_vector(np.array([7, 3]), np.array([1.0, 3.0]))
    assert np.allclose(twice, once, atol=1e-6)


def test_empty_history_gets_the_popularity_list(model: ALSRecommender) -> None:
    vector = model.user_vector(np.empty(0, np.int64))
    assert not vector.any()
    assert model.fallback is not None
    expected = model.fallback.recommend(np.array([-1]), 6)[0]
    assert model.score_vector(vector, None, 6).tolist() == expected.tolist()
    without = model.score_vector(vector, expected[:2], 4)
    assert without.tolist() == expected[2:].tolist()


@pytest.mark.parametrize(
    ("items", "weights"),
    [([0, 40], None), ([-1], None), ([1, 2], [1.0]), ([1], [0.0]), ([1], [float("nan")])],
)
def test_user_vector_refuses_bad_input(
    model: ALSRecommender, items: list[int], weights: list[float] | None
) -> None:
    with pytest.raises(ValueError):
        model.user_vector(np.array(items), None if weights is None else np.array(weights))


def test_score_vector_refuses_bad_exclusions(model: ALSRecommender) -> None:
    vector = np.ones(2, dtype=np.float32)
    for bad in ([-1], [40]):
        with pytest.raises(ValueError):
            model.score_vector(vector, np.array(bad), 5)


def test_loaded_model_maps_user_factors_and_folds_in_alike(
    model: ALSRecommender, data: TrainingData, tmp_path: Path
) -> None:
    loaded = load_model(save_model(model, tmp_path / "als"))
    assert isinstance(loaded, ALSRecommender)
    assert isinstance(loaded.user_factors, np.memmap)
    items, weights = history(data, 3)
    assert (loaded.user_vector(items, weights) == model.user_vector(items, weights)).all()
