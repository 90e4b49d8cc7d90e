"""Item-kNN: the contract, similarities and scores against slow references."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest
import scipy.sparse as sp

from movierec.models.base import TrainingData
from movierec.models.itemknn import ItemKNNRecommender, bm25_weighted, item_similarity
from tests.models.contract import HALF, RecommenderContract, build_data, planted_data


def make_knn() -> ItemKNNRecommender:
    return ItemKNNRecommender(neighbours=6, shrinkage=2.0)


class TestItemKNN(RecommenderContract):
    bad_params: ClassVar[tuple[dict[str, object], ...]] = (
        {"neighbours": 0},
        {"neighbours": 1.5},
        {"shrinkage": -1.0},
        {"weighting": "tfidf"},
        {"bm25_b": 1.5},
        {"bm25_k1": -0.1},
        {"num_threads": -2},
        {"fallback_half_life_days": -1.0},
    )

    def make(self) -> ItemKNNRecommender:
        return make_knn()


class TestItemKNNBM25(TestItemKNN):
    def make(self) -> ItemKNNRecommender:
        return ItemKNNRecommender(neighbours=6, weighting="bm25")


def slow_similarity(dense: np.ndarray, neighbours: int, shrinkage: float) -> np.ndarray:
    n_items = dense.shape[1]
    full = np.zeros((n_items, n_items))
    for i in range(n_items):
        for j in range(n_items):
            a, b = dense[:, i], dense[:, j]
            denominator = np.sqrt(a @ a) * np.sqrt(b @ b) + shrinkage
            if i != j and denominator > 0:
                full[i, j] = (a @ b) / denominator
    kept = np.zeros_like(full)
    for i in range(n_items):
        for j in sorted(range(n_items), key=lambda j: -full[i, j])[:neighbours]:
            kept[i, j] = max(full[i, j], 0.0)
    return kept


@pytest.mark.parametrize(("neighbours", "shrinkage"), [(2, 0.0), (2, 3.0), (10, 1.0)])
def test_similarity_matches_a_slow_reference(neighbours: int, shrinkage: float) -> None:
    rng = np.random.default_rng(11)
    # Distinct real values: no ties at the K-th neighbour.
    dense = np.where(rng.random((9, 6)) < 0.5, rng.uniform(1, 5, (9, 6)), 0.0)
    matrix = sp.csr_matrix(dense.astype(np.float32))
    similarity = item_similarity(matrix, neighbours, shrinkage, threads=2).toarray()
    expected = slow_similarity(dense, neighbours, shrinkage)
    assert similarity == pytest.approx(expected, abs=1e-6)


def test_bm25_weights_match_the_formula() -> None:
    matrix = sp.csr_matrix(np.array([[1.0, 2.0, 0.0], [0.0, 3.0, 1.0]], dtype=np.float32))
    weighted = bm25_weighted(matrix, k1=1.2, b=0.75).toarray()
    item_length = np.array([1.0, 5.0, 1.0])
    length_norm = 0.25 + 0.75 * item_length / item_length.mean()
    idf = max(np.log(3) - np.log1p(2), 0.0)  # both users watched two items
    value = 3.0 * 2.2 / (1.2 * length_norm[1] + 3.0) * idf
    assert weighted[1, 1] == pytest.approx(value, rel=1e-6)


def test_scores_are_history_times_similarity() -> None:
    data = planted_data()
    model = make_knn().fit(data)
    assert model.similarity is not None
    for row in (0, 9, 17):
        scores = (data.matrix[row] @ model.similarity).toarray().ravel()
        scores[data.matrix[row].indices] = -np.inf
        listed = model.recommend(data.user_ids[row : row + 1], 5)[0]
        assert scores[listed].tolist() == sorted(scores, reverse=True)[:5]


def test_recommends_within_the_users_block() -> None:
    data = planted_data()
    lists = make_knn().fit(data).recommend(data.user_ids[:28], 5)
    assert (lists[:14] < HALF).all() and (lists[14:] >= HALF).all()


def test_unlinked_items_follow_popularity() -> None:
    # User 0 watched item 0, linked only to item 1; the rest comes in popularity order.
    data: TrainingData = build_data(
        rows=[0, 1, 1, 2, 2, 3, 4],
        cols=[0, 0, 1, 3, 2, 3, 3],
        values=np.ones(7),
        n_users=5,
        n_items=5,
    )
    model = ItemKNNRecommender(neighbours=3, shrinkage=0.0).fit(data)
    assert model.recommend(data.user_ids[:1], 5).tolist() == [[1, 3, 2, 4, -1]]
