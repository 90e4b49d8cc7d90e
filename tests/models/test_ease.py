"""EASE: the contract, the closed form against numpy's inverse, and whole lists against a
slow reference that ranks item by item."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.models.base import TrainingData
from movierec.models.ease import EASERecommender, ease_weights
from movierec.models.popularity import PopularityRecommender
from tests.models.contract import HALF, RecommenderContract, build_data, planted_data


def make_ease() -> EASERecommender:
    # 30 of the 40 items learnt: the contract also covers the popularity tail.
    return EASERecommender(l2=5.0, max_items=30)


class TestEASE(RecommenderContract):
    bad_params: ClassVar[tuple[dict[str, object], ...]] = (
        {"l2": 0.0},
        {"l2": -1.0},
        {"l2": float("inf")},
        {"l2": float("nan")},
        {"max_items": 0},
        {"max_items": 10.5},
        {"num_threads": -1},
        {"solve_threads": -1},
        {"fallback_half_life_days": 0.0},
    )

    def make(self) -> EASERecommender:
        return make_ease()


class TestEASEAllItems(TestEASE):
    def make(self) -> EASERecommender:
        return EASERecommender(l2=5.0)


def reference_weights(dense: np.ndarray, l2: float) -> np.ndarray:
    inverse = np.linalg.inv(dense.T @ dense + l2 * np.eye(dense.shape[1]))
    weights = -inverse / np.diag(inverse)[None, :]
    np.fill_diagonal(weights, 0.0)
    return weights


def slow_lists(dense: np.ndarray, l2: float, max_items: int, popular: list[int]) -> list:
    """Each user's full ranking: the learnt items by x_u B, then the rest by popularity."""
    watchers = (dense > 0).sum(axis=0)
    by_watchers = sorted(range(dense.shape[1]), key=lambda i: (-watchers[i], i))
    learnt = sorted(i for i in by_watchers[:max_items] if watchers[i] > 0)
    weights = reference_weights(dense[:, learnt], l2)
    lists = []
    for row in dense:
        seen = {i for i in range(len(row)) if row[i] > 0}
        history = [position for position, i in enumerate(learnt) if i in seen]
        if not history:
            lists.append([i for i in popular if i not in seen])
            continue
        score = {
            item: sum(row[learnt[h]] * weights[h, position] for h in history)
            for position, item in enumerate(learnt)
        }
        first = sorted((i for i in learnt if i not in seen), key=lambda i: (-score[i], i))
        lists.append(first + [i for i in popular if i not in seen and i not in learnt])
    return lists


def random_data(seed: int, n_users: int = 14, n_items: int = 9) -> TrainingData:
    rng = np.random.default_rng(seed)
    cells = np.argwhere(rng.random((n_users, n_items)) < 0.4)
    return build_data(
        cells[:, 0], cells[:, 1], rng.uniform(1, 4, len(cells)), n_users, n_items,
        age_days=rng.uniform(0, 30, len(cells)),
    )  # fmt: skip


@pytest.mark.parametrize(("l2", "max_items"), [(1.0, 100), (3.0, 5), (20.0, 1), (0.5, 8)])
def test_lists_match_a_slow_reference(l2: float, max_items: int) -> None:
    data = random_data(int(l2 * 10) + max_items)
    model = EASERecommender(l2=l2, max_items=max_items).fit(data)
    popular = PopularityRecommender().fit(data).recommend(np.array([-1]), data.n_items)[0]
    expected = slow_lists(data.matrix.toarray().astype(np.float64), l2, max_items, popular)
    lists = model.recommend(data.user_ids, data.n_items)
    for got, want in zip(lists, expected, strict=True):
        assert got[got >= 0].tolist() == want


def test_weights_are_the_closed_form() -> None:
    dense = random_data(3).matrix.toarray().astype(np.float64)
    by_item = sp.csr_matrix(dense.T.astype(np.float32))
    for solve_threads in (1, 2):
        weights = ease_weights(by_item, 2.0, threads=2, solve_threads=solve_threads)
        assert weights == pytest.approx(reference_weights(dense, 2.0), abs=1e-6)


@settings(max_examples=30, deadline=None)
@given(
    cells=st.lists(st.tuples(st.integers(0, 7), st.integers(0, 5)), max_size=30, unique=True),
    l2=st.floats(0.1, 1000.0),
)
def test_weights_solve_the_constrained_ridge_problem(
    cells: list[tuple[int, int]], l2: float
) -> None:
    # B minimises |X - XB|^2 + l2 |B|^2 with diag(B) = 0 exactly when diag(B) = 0 and
    # ((X^T X + l2 I) B)_ij = (X^T X)_ij off the diagonal (the constraint takes the rest).
    dense = np.zeros((8, 6))
    for row, col in cells:
        dense[row, col] = 1.0 + (row * 7 + col) % 3
    weights = ease_weights(sp.csr_matrix(dense.T.astype(np.float32)), l2, 1).astype(np.float64)
    gram = dense.T @ dense
    residual = (gram + l2 * np.eye(6)) @ weights - gram
    off = ~np.eye(6, dtype=bool)
    assert np.diag(weights).tolist() == [0.0] * 6
    assert np.abs(residual[off]).max() <= 1e-5 * max(1.0, np.abs(gram).max())


def test_items_beyond_max_items_come_after_the_learnt_ones() -> None:
    data = planted_data()
    model = EASERecommender(l2=5.0, max_items=10).fit(data)
    assert model.learnt is not None and len(model.learnt) == 10
    learnt = set(model.learnt.tolist())
    for row in model.recommend(data.user_ids[:28], 30):
        flags = [int(item) in learnt for item in row if item >= 0]
        assert flags == sorted(flags, reverse=True)  # every learnt item first


def test_a_history_of_only_unlearnt_items_gets_popularity() -> None:
    data = planted_data()
    model = EASERecommender(l2=5.0, max_items=10).fit(data)
    assert model.learnt is not None and model.fallback is not None
    tail = np.setdiff1d(np.arange(data.n_items), model.learnt)[:3]
    expected = model.fallback.ranked_excluding(tail, 8)
    assert model.recommend_history(5, tail, None, 8).tolist() == expected.tolist()


def test_a_fresh_history_scores_like_a_training_row() -> None:
    data = planted_data()
    model = make_ease().fit(data)
    for row in (0, 7, 20):
        entries = data.matrix[row]
        fresh = model.recommend_history(0, entries.indices, entries.data, 10)
        assert fresh.tolist() == model.recommend(data.user_ids[row : row + 1], 10)[0].tolist()


def test_recommends_within_the_users_block() -> None:
    # Firm l2: on 14 users a block, a weak one lets B learn negative weights that rank
    # some of the own block's items below the other block's (which score exactly 0).
    data = planted_data()
    lists = EASERecommender(l2=50.0, max_items=30).fit(data).recommend(data.user_ids[:28], 5)
    assert (lists[:14] < HALF).all() and (lists[14:] >= HALF).all()
