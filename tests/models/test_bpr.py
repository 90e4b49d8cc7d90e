"""BPR: the contract, lists and fold-in against slow references, planted structure."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from movierec.models.base import TrainingData
from movierec.models.bpr import BPRRecommender
from movierec.models.kinds import load_model, save_model
from tests.models.contract import EMPTY_ROWS, HALF, RecommenderContract, planted_data


def make_bpr(**overrides: object) -> BPRRecommender:
    # Two latent groups: a few factors; a brisk rate, since the data is 224 interactions.
    params = {"factors": 4, "learning_rate": 0.05, "iterations": 60, "random_state": 3}
    return BPRRecommender(**{**params, **overrides})


class TestBPR(RecommenderContract):
    bad_params: ClassVar[tuple[dict[str, object], ...]] = (
        {"factors": 0},
        {"factors": 2.5},
        {"learning_rate": 0.0},
        {"learning_rate": float("inf")},
        {"regularization": -0.1},
        {"regularization": float("nan")},
        {"iterations": 0},
        {"random_state": -1},
        {"random_state": 1.5},
        {"num_threads": -1},
        {"fallback_half_life_days": 0.0},
    )

    def make(self) -> BPRRecommender:
        return make_bpr()


@pytest.fixture(scope="module")
def data() -> TrainingData:
    return planted_data()


@pytest.fixture(scope="module")
def model(data: TrainingData) -> BPRRecommender:
    return make_bpr().fit(data)


def slow_list(scores: list[float], seen: set[int], k: int) -> list[int]:
    ranked = sorted((i for i in range(len(scores)) if i not in seen), key=lambda i: -scores[i])
    return ranked[:k]


def test_lists_are_the_factors_ranked_one_user_at_a_time(
    model: BPRRecommender, data: TrainingData
) -> None:
    assert model.user_factors is not None and model.item_factors is not None
    lists = model.recommend(data.user_ids, 12)
    for row in range(data.n_users):
        if row in EMPTY_ROWS:
            continue
        user = model.user_factors[row].astype(np.float64)
        scores = [float(user @ item) for item in model.item_factors.astype(np.float64)]
        seen = set(data.matrix[row].indices.tolist())
        assert lists[row].tolist() == slow_list(scores, seen, 12)


def test_users_carry_the_bias_column(model: BPRRecommender) -> None:
    assert model.user_factors is not None and model.item_factors is not None
    assert model.user_factors.shape == (30, 5) and model.item_factors.shape == (40, 5)
    assert (model.user_factors[:, -1] == 1.0).all()


def test_the_fold_in_is_the_weighted_mean_of_the_items(model: BPRRecommender) -> None:
    assert model.item_factors is not None
    items, weights = np.array([3, 7, 3, 11]), np.array([1.0, 2.0, 0.5, 4.0])
    factors = model.item_factors[:, :4].astype(np.float64)
    expected = sum(w * factors[i] for i, w in zip(items, weights, strict=True))
    vector = model.user_vector(items, weights)
    assert vector[:4] == pytest.approx(expected / weights.sum(), abs=1e-6)
    assert vector[4] == 1.0
    scores = [float(vector.astype(np.float64) @ item) for item in model.item_factors]
    listed = model.recommend_history(0, items, weights, 10)
    assert listed.tolist() == slow_list(scores, set(items.tolist()), 10)


def test_recommends_within_the_users_block(model: BPRRecommender, data: TrainingData) -> None:
    lists = model.recommend(data.user_ids[:28], 5)
    assert (lists[:14] < HALF).all() and (lists[14:] >= HALF).all()


def test_a_folded_in_history_stays_in_its_block(model: BPRRecommender, data: TrainingData) -> None:
    for row in (0, 5, 20, 27):
        entries = data.matrix[row]
        listed = model.recommend_history(0, entries.indices, entries.data, 5)
        assert ((listed < HALF) == (row < 14)).all()


def test_a_seeded_fit_ignores_threads_and_repeats_exactly(data: TrainingData) -> None:
    # implicit's threads race on the shared factors: a seeded fit runs on one thread.
    one = make_bpr(num_threads=1).fit(data)
    two = make_bpr(num_threads=2).fit(data)
    assert one.item_factors is not None and two.item_factors is not None
    assert (one.item_factors == two.item_factors).all()
    other = make_bpr(random_state=4).fit(data)
    assert other.item_factors is not None
    assert not (other.item_factors == one.item_factors).all()


@pytest.mark.parametrize(
    ("items", "weights"),
    [([0, 40], None), ([-1], None), ([1, 2], [1.0]), ([1], [0.0]), ([1], [float("nan")])],
)
def test_user_vector_refuses_bad_input(
    model: BPRRecommender, items: list[int], weights: list[float] | None
) -> None:
    with pytest.raises(ValueError):
        model.user_vector(np.array(items), None if weights is None else np.array(weights))


def test_loaded_model_maps_user_factors_and_folds_in_alike(
    model: BPRRecommender, tmp_path: Path
) -> None:
    loaded = load_model(save_model(model, tmp_path / "bpr"))
    assert isinstance(loaded, BPRRecommender)
    assert isinstance(loaded.user_factors, np.memmap)
    items = np.array([1, 4, 9])
    assert loaded.recommend_history(0, items).tolist() == model.recommend_history(0, items).tolist()
