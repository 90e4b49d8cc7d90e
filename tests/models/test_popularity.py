"""Popularity: the contract, the decay against a slow reference, and its fallbacks."""

from __future__ import annotations

import math
from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from movierec.models.base import TrainingData
from movierec.models.popularity import PopularityRecommender, item_popularity
from tests.models.contract import NOW_NS, RecommenderContract, build_data, planted_data


class TestPopularity(RecommenderContract):
    bad_params: ClassVar[tuple[dict[str, object], ...]] = (
        {"half_life_days": 0.0},
        {"half_life_days": -3.0},
        {"half_life_days": float("nan")},
        {"half_life_days": "14"},
    )

    def make(self) -> PopularityRecommender:
        return PopularityRecommender()


def two_items(old_days: float, new_days: float, half_life: float = 14.0) -> np.ndarray:
    """Item 0 watched three times old_days ago, item 1 three times new_days ago."""
    data = build_data(
        rows=[0, 1, 2, 3, 4, 5],
        cols=[0, 0, 0, 1, 1, 1],
        values=np.ones(6),
        n_users=7,
        n_items=3,
        age_days=[old_days] * 3 + [new_days] * 3,
    )
    model = PopularityRecommender(half_life_days=half_life).fit(data)
    assert model.scores is not None
    return model.scores


def test_recent_beats_old_with_equal_counts() -> None:
    scores = two_items(old_days=30.0, new_days=1.0)
    assert scores[1] > scores[0] > scores[2] == 0.0
    data = build_data([0, 1, 2, 3], [0, 0, 1, 1], np.ones(4), 5, 2, age_days=[20, 20, 2, 2])
    model = PopularityRecommender().fit(data)
    assert model.recommend(data.user_ids[4:], 2).tolist() == [[1, 0]]


def test_one_half_life_halves_an_event() -> None:
    scores = two_items(old_days=14.0, new_days=0.0)
    assert scores[1] == pytest.approx(3.0) and scores[0] == pytest.approx(1.5)
    assert two_items(old_days=7.0, new_days=0.0, half_life=7.0)[0] == pytest.approx(1.5)


def test_scores_match_a_slow_reference(rng: np.random.Generator) -> None:
    n_users, n_items, n_events = 20, 12, 300
    users = rng.integers(0, n_users, n_events)
    items = rng.integers(0, n_items, n_events)
    times = NOW_NS - rng.integers(0, 90 * 86_400 * 10**9, n_events)
    weights = rng.uniform(0.1, 5.0, n_events).astype(np.float32)
    matrix = sp.csr_matrix((np.ones(n_events), (users, items)), shape=(n_users, n_items))
    data = TrainingData(
        matrix=matrix,
        user_ids=np.arange(n_users, dtype=np.int64),
        item_ids=np.array([f"m{i}" for i in range(n_items)], dtype=object),
        now_ns=NOW_NS,
        event_user=users.astype(np.int32),
        event_item=items.astype(np.int32),
        event_time_ns=times.astype(np.int64),
        event_weight=weights,
    )
    half_life_days = 9.5
    expected = [0.0] * n_items
    for item, t, w in zip(items, times, weights, strict=True):
        age_days = (NOW_NS - int(t)) / 86_400e9
        expected[item] += float(w) * math.exp(-age_days / half_life_days * math.log(2))
    model = PopularityRecommender(half_life_days=half_life_days).fit(data)
    assert model.scores == pytest.approx(expected, rel=1e-12)
    assert model.order is not None
    assert model.order.tolist() == sorted(range(n_items), key=lambda i: (-expected[i], i))


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(5)


def test_without_events_uses_column_sums() -> None:
    data = planted_data()
    bare = TrainingData(data.matrix, data.user_ids, data.item_ids, data.now_ns)
    model = PopularityRecommender().fit(bare)
    assert model.scores is not None
    assert model.scores == pytest.approx(np.asarray(data.matrix.sum(axis=0)).ravel())


def test_infinite_half_life_counts_weights() -> None:
    scores = two_items(old_days=400.0, new_days=0.0, half_life=float("inf"))
    assert scores.tolist() == [3.0, 3.0, 0.0]


def test_future_events_count_as_fresh() -> None:
    scores = two_items(old_days=-5.0, new_days=0.0)
    assert scores[0] == scores[1] == 3.0


def test_equal_scores_rank_lower_index_first() -> None:
    data = build_data([0, 1, 2], [3, 1, 2], np.ones(3), 4, 5)
    model = PopularityRecommender().fit(data)
    assert model.recommend(data.user_ids[3:], 5).tolist() == [[1, 2, 3, 0, 4]]
    assert model.recommend(data.user_ids[:1], 5).tolist() == [[1, 2, 0, 4, -1]]


def test_segment_popularity_splits_by_group() -> None:
    data = planted_data()
    groups = np.where(np.arange(data.n_users) < 14, 0, -1)  # block A only; others in none
    per_group = item_popularity(data, 14.0, groups, n_groups=1)[0]
    everyone = item_popularity(data, 14.0)[0]
    assert per_group[:20] == pytest.approx(everyone[:20])
    assert not per_group[20:].any()
