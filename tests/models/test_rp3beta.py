"""RP3beta: the contract, and the walk matrix against a slow, loop-by-loop reference."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from movierec.models import scoring
from movierec.models.rp3beta import RP3betaRecommender, rp3beta_similarity, transitions
from tests.models.contract import HALF, RecommenderContract, planted_data


def make_rp3beta() -> RP3betaRecommender:
    return RP3betaRecommender(alpha=0.8, beta=0.4, neighbours=6)


class TestRP3beta(RecommenderContract):
    bad_params: ClassVar[tuple[dict[str, object], ...]] = (
        {"alpha": 0.0},
        {"alpha": -1.0},
        {"alpha": float("inf")},
        {"alpha": float("nan")},
        {"beta": -0.1},
        {"beta": float("inf")},
        {"neighbours": 0},
        {"neighbours": 2.5},
        {"num_threads": -1},
        {"fallback_half_life_days": 0.0},
    )

    def make(self) -> RP3betaRecommender:
        return make_rp3beta()


def slow_rp3beta(dense: np.ndarray, alpha: float, beta: float, neighbours: int) -> np.ndarray:
    """The definition, one entry at a time."""
    n_users, n_items = dense.shape
    user_to_item = np.zeros((n_users, n_items))
    for u in range(n_users):
        if dense[u].sum() > 0:
            user_to_item[u] = (dense[u] / dense[u].sum()) ** alpha
    item_to_user = np.zeros((n_items, n_users))
    for i in range(n_items):
        if dense[:, i].sum() > 0:
            item_to_user[i] = (dense[:, i] / dense[:, i].sum()) ** alpha
    full = np.zeros((n_items, n_items))
    for i in range(n_items):
        for j in range(n_items):
            walk = sum(item_to_user[i, u] * user_to_item[u, j] for u in range(n_users))
            watchers = int((dense[:, j] > 0).sum())
            if i != j and watchers > 0:
                full[i, j] = walk / watchers**beta
    kept = np.zeros_like(full)
    for i in range(n_items):
        for j in sorted(range(n_items), key=lambda j: -full[i, j])[:neighbours]:
            kept[i, j] = max(full[i, j], 0.0)
    return kept


def random_dense(seed: int, shape: tuple[int, int] = (9, 7)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    # Distinct real values: no ties at the K-th neighbour.
    return np.where(rng.random(shape) < 0.5, rng.uniform(1, 5, shape), 0.0)


@pytest.mark.parametrize(
    ("alpha", "beta", "neighbours"), [(1.0, 0.5, 3), (0.6, 0.0, 10), (1.4, 1.0, 2), (1.0, 0.0, 6)]
)
def test_similarity_matches_a_slow_reference(alpha: float, beta: float, neighbours: int) -> None:
    dense = random_dense(5)
    dense[:, 3] = 0.0  # an item nobody watched
    dense[4] = 0.0  # a user without history
    matrix = sp.csr_matrix(dense.astype(np.float32))
    similarity = rp3beta_similarity(matrix, alpha, beta, neighbours, threads=2).toarray()
    expected = slow_rp3beta(dense, alpha, beta, neighbours)
    assert similarity == pytest.approx(expected, rel=1e-5, abs=1e-7)


def test_transitions_are_distributions() -> None:
    dense = random_dense(8)
    dense[2] = 0.0
    rows = transitions(sp.csr_matrix(dense.astype(np.float32)), 1.0).toarray()
    assert rows.sum(axis=1) == pytest.approx(np.where(np.arange(9) == 2, 0.0, 1.0), abs=1e-6)


def test_without_penalty_a_row_and_its_return_walk_sum_to_one() -> None:
    # With alpha = 1, beta = 0 and every neighbour kept, row i is the walk's distribution
    # from i minus the walk back to i itself.
    dense = random_dense(9)
    matrix = sp.csr_matrix(dense.astype(np.float32))
    walk = (transitions(matrix.T.tocsr(), 1.0) @ transitions(matrix, 1.0)).toarray()
    similarity = rp3beta_similarity(matrix, 1.0, 0.0, 100, threads=1).toarray()
    assert similarity.sum(axis=1) + np.diag(walk) == pytest.approx(np.ones(7), abs=1e-6)


def test_the_penalty_moves_hits_down() -> None:
    # From item 2 the walk reaches the hit, item 0, more often than item 1 (5/12 against
    # 1/6), but ten users watched item 0 and three item 1: beta = 1 turns the order.
    dense = np.zeros((10, 3))
    dense[:, 0] = 1.0
    dense[:3, 1] = 1.0
    dense[:6, 2] = 1.0
    matrix = sp.csr_matrix(dense.astype(np.float32))
    plain = rp3beta_similarity(matrix, 1.0, 0.0, 2, threads=1).toarray()
    penalised = rp3beta_similarity(matrix, 1.0, 1.0, 2, threads=1).toarray()
    assert plain[2, :2] == pytest.approx([5 / 12, 1 / 6])
    assert penalised[2, :2] == pytest.approx([5 / 12 / 10, 1 / 6 / 3])


def test_blocks_and_threads_do_not_change_the_matrix(monkeypatch: pytest.MonkeyPatch) -> None:
    matrix = sp.csr_matrix(random_dense(3, (40, 25)).astype(np.float32))
    whole = rp3beta_similarity(matrix, 0.7, 0.3, 5, threads=1).toarray()
    monkeypatch.setattr(scoring, "BLOCK_BYTES", 12 * 25 * 4)  # 4 items a block
    assert (rp3beta_similarity(matrix, 0.7, 0.3, 5, threads=2).toarray() == whole).all()


def test_scores_are_history_times_the_walk_matrix() -> None:
    data = planted_data()
    model = make_rp3beta().fit(data)
    assert model.similarity is not None
    for row in (0, 9, 17):
        scores = (data.matrix[row] @ model.similarity).toarray().ravel()
        scores[data.matrix[row].indices] = -np.inf
        listed = model.recommend(data.user_ids[row : row + 1], 5)[0]
        assert scores[listed].tolist() == sorted(scores, reverse=True)[:5]


def test_recommends_within_the_users_block() -> None:
    data = planted_data()
    lists = make_rp3beta().fit(data).recommend(data.user_ids[:28], 5)
    assert (lists[:14] < HALF).all() and (lists[14:] >= HALF).all()
