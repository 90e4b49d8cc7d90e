"""Random lists: the contract, and that the lists really are random and learn nothing."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from movierec.models.random_lists import RandomListsRecommender
from movierec.training.pipeline import DEFAULT_MODELS, TrainConfig
from movierec.training.search import SPACES
from tests.models.contract import (
    EMPTY_ROWS,
    HALF,
    N_ITEMS,
    RecommenderContract,
    build_data,
    planted_data,
)


class TestRandomLists(RecommenderContract):
    bad_params: ClassVar[tuple[dict[str, object], ...]] = (
        {"seed": -1},
        {"seed": 1.5},
        {"seed": "3"},
    )
    # Unknown users share one random list, not the popularity ranking.
    fallback_is_popularity = False

    def make(self) -> RandomListsRecommender:
        return RandomListsRecommender(seed=3)


def test_each_user_and_each_seed_gets_another_order() -> None:
    data = planted_data()
    users = data.user_ids[:20]
    first = RandomListsRecommender(seed=1).fit(data).recommend(users, 10)
    again = RandomListsRecommender(seed=1).fit(data).recommend(users, 10)
    other = RandomListsRecommender(seed=2).fit(data).recommend(users, 10)
    assert (first == again).all()
    assert len({tuple(row) for row in first.tolist()}) == 20
    assert (first != other).any(axis=1).all()


def test_every_item_leads_about_equally_often() -> None:
    # One bystander watched all 40 items, so all are in the catalogue. Users the data does
    # not know share the fallback list, so 4,000 user ids ask with an empty history.
    data = build_data(np.zeros(N_ITEMS), np.arange(N_ITEMS), np.ones(N_ITEMS), 1, N_ITEMS)
    model = RandomListsRecommender().fit(data)
    empty = np.empty(0, np.int64)
    firsts = [int(model.recommend_history(user, empty, None, 1)[0]) for user in range(1, 4001)]
    counts = np.bincount(firsts, minlength=N_ITEMS)
    assert counts.sum() == 4000 and counts.min() >= 60 and counts.max() <= 140  # 100 each


def test_the_lists_ignore_what_users_like() -> None:
    # Planted groups: each user watches only their own half of the catalogue, so a model
    # that learns fills lists with that half; random lists take it about half the time.
    data = planted_data()
    users = data.user_ids[:28]
    lists = RandomListsRecommender(seed=5).fit(data).recommend(users, 10)
    group_b = np.arange(28) >= 14
    own_half = np.where(group_b[:, None], lists >= HALF, lists < HALF)
    assert 0.35 <= own_half.mean() <= 0.65


def test_items_the_data_never_saw_come_last_in_index_order() -> None:
    # Items 0-2 watched by user 0; items 3-5 by nobody.
    data = build_data([0, 0, 0], [0, 1, 2], np.ones(3), n_users=2, n_items=6)
    lists = RandomListsRecommender(seed=9).fit(data).recommend(data.user_ids, 6)
    assert lists[0].tolist()[:3] == [3, 4, 5] and lists[0].tolist()[3:] == [-1, -1, -1]
    assert sorted(lists[1].tolist()[:3]) == [0, 1, 2] and lists[1].tolist()[3:] == [3, 4, 5]


def test_a_list_from_the_users_own_history_is_their_list() -> None:
    data = planted_data()
    model = RandomListsRecommender(seed=4).fit(data)
    for row in range(len(data.user_ids)):
        if row in EMPTY_ROWS:
            continue
        user = int(data.user_ids[row])
        history = data.matrix.indices[data.matrix.indptr[row] : data.matrix.indptr[row + 1]]
        listed = model.recommend(np.array([user]), 12)[0]
        assert model.recommend_history(user, history, None, 12).tolist() == listed.tolist()


def test_training_tries_random_lists_only_when_asked() -> None:
    assert "random" not in DEFAULT_MODELS
    assert "random" not in TrainConfig(store="s", models_dir="m").models
    assert TrainConfig(store="s", models_dir="m", models=("random",)).models == (
        "popularity",
        "random",
    )
    assert SPACES["random"] == {}  # no seeds searched for the luckiest lists
