"""Item-item nearest neighbours: cosine similarity with shrinkage, top-K per item.

sim(i, j) = <x_i, x_j> / (|x_i| |x_j| + shrinkage), where x_i is item i's column of the
training matrix (optionally BM25-weighted, which discounts heavy users). Shrinkage pulls
the similarity of items with few common viewers towards 0. A user's score for item j is
sum over watched i of value(u, i) x sim(i, j), over i's K nearest neighbours only.

Our own blocked implementation rather than implicit's CosineRecommender: implicit's has no
shrinkage and normalises in float64 through COO copies of the whole matrix. Here item
blocks of X^T X are computed as sparse products, made dense per block, and cut to the K
best per row with argpartition, on a thread pool (scipy's sparse product releases the GIL).
That blocked top-K (`top_neighbours`) and the scoring from a neighbour matrix
(`NeighbourRecommender`) are shared with RP3beta, which learns its matrix differently.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import numpy as np
import scipy.sparse as sp

from movierec.models.base import (
    LIST_LENGTH,
    ModelParams,
    Recommender,
    TrainingData,
    require_float,
    require_int,
)
from movierec.models.history import FittedHistory, History, load_array
from movierec.models.popularity import PopularityRecommender, item_popularity
from movierec.models.scoring import (
    block_rows,
    check_items,
    check_k,
    rank_prior,
    run_blocks,
    thread_count,
    top_k,
)

WEIGHTINGS = ("none", "bm25")


@dataclass(frozen=True)
class Params(ModelParams):
    neighbours: int = 100  # K: neighbours kept per item
    shrinkage: float = 10.0
    weighting: str = "none"  # "bm25": BM25-weight the matrix before the cosine
    bm25_k1: float = 1.2
    bm25_b: float = 0.75
    num_threads: int = 0  # 0: all cores
    fallback_half_life_days: float = 14.0

    def __post_init__(self) -> None:
        require_int("neighbours", self.neighbours, 1)
        require_float("shrinkage", self.shrinkage, 0.0)
        if self.weighting not in WEIGHTINGS:
            raise ValueError(f"weighting must be one of {WEIGHTINGS}, got {self.weighting!r}")
        require_float("bm25_k1", self.bm25_k1, 0.0)
        require_float("bm25_b", self.bm25_b, 0.0)
        if self.bm25_b > 1.0 or self.bm25_k1 == float("inf"):
            raise ValueError("bm25_b must be in [0, 1] and bm25_k1 finite")
        require_int("num_threads", self.num_threads, 0)
        require_float("fallback_half_life_days", self.fallback_half_life_days, 0.0, strict=True)


def bm25_weighted(matrix: sp.csr_matrix, k1: float, b: float) -> sp.csr_matrix:
    """BM25 on items as documents and users as terms (implicit's bm25_weight): users who
    watch everything say little about any pair of items."""
    n_users, n_items = matrix.shape
    counts = np.diff(matrix.indptr)
    idf = np.maximum(np.log(n_items) - np.log1p(counts), 0.0)
    item_length = np.bincount(matrix.indices, weights=matrix.data, minlength=n_items)
    length_norm = (1.0 - b) + b * item_length / max(float(item_length.mean()), 1e-12)
    # Per-entry arithmetic in float32: a float64 copy of 20M values would be 160 MB each.
    values = np.asarray(matrix.data, dtype=np.float32)
    denominator = (k1 * length_norm.astype(np.float32))[matrix.indices]
    denominator += values
    weighted = values * np.float32(k1 + 1.0)
    weighted /= denominator
    weighted *= np.repeat(idf.astype(np.float32), counts)
    return sp.csr_matrix((weighted, matrix.indices, matrix.indptr), shape=(n_users, n_items))


def top_neighbours(
    left: sp.csr_matrix,
    right: sp.csr_matrix,
    neighbours: int,
    threads: int,
    weigh: Callable[[np.ndarray, int, int], np.ndarray],
    bytes_per_value: int = 20,
) -> sp.csr_matrix:
    """Row i: the K largest positive entries of row i of weigh(left @ right) without its
    diagonal, float32 CSR (items x items). `left` is items x users and `right` users x
    items; weigh(dots, start, stop) turns the dense block of rows [start, stop) of the
    product into the values to rank, and may overwrite `dots`.

    The rows are computed in blocks: a sparse product per block, made dense and cut to the
    K best per row with argpartition, on a thread pool (scipy's sparse product releases
    the GIL), so the full items x items product never exists at once."""
    n_items = right.shape[1]
    kept = min(neighbours, n_items - 1)
    if kept <= 0:
        return sp.csr_matrix((n_items, n_items), dtype=np.float32)
    pieces: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def work(start: int, stop: int) -> None:
        values = weigh((left[start:stop] @ right).toarray(), start, stop)
        values[np.arange(stop - start), np.arange(start, stop)] = 0.0  # not its own neighbour
        best = np.sort(np.argpartition(values, n_items - kept, axis=1)[:, n_items - kept :])
        top = np.take_along_axis(values, best, axis=1)
        positive = top > 0
        pieces[start] = (positive.sum(axis=1), best[positive], top[positive])

    # bytes_per_value: what one cell of a block costs at its peak, across weigh's arrays.
    run_blocks(n_items, block_rows(n_items, bytes_per_value), threads, work)
    parts = [pieces[start] for start in sorted(pieces)]
    indptr = np.concatenate([[0], np.cumsum(np.concatenate([c for c, _, _ in parts]))])
    return sp.csr_matrix(
        (
            np.concatenate([v for _, _, v in parts]).astype(np.float32),
            np.concatenate([i for _, i, _ in parts]).astype(np.int32),
            indptr.astype(np.int64),
        ),
        shape=(n_items, n_items),
    )


def item_similarity(
    matrix: sp.csr_matrix, neighbours: int, shrinkage: float, threads: int
) -> sp.csr_matrix:
    """Row i: item i's K most similar other items with positive similarity, float32."""
    n_items = matrix.shape[1]
    norms = np.sqrt(np.bincount(matrix.indices, weights=np.square(matrix.data, dtype=np.float64)))
    norms = np.pad(norms, (0, n_items - len(norms))).astype(np.float32)

    def cosine(dots: np.ndarray, start: int, stop: int) -> np.ndarray:
        # Per block: the dense product, its denominators and the similarities.
        denominator = norms[start:stop, None] * norms[None, :]
        denominator += shrinkage
        return np.divide(dots, denominator, out=np.zeros_like(dots), where=denominator > 0)

    return top_neighbours(matrix.T.tocsr(), matrix, neighbours, threads, cosine)


class NeighbourRecommender(FittedHistory, Recommender):
    """A user's score for item j: sum over watched i of value(u, i) x W[i, j], with W a
    sparse item-item matrix of the K best neighbours per item; items linked to nothing
    the user watched follow popularity. Subclasses say how W is learnt (`_neighbours`);
    their Params have `num_threads` and `fallback_half_life_days`."""

    params: Any

    def __init__(self, params: ModelParams | None = None, **overrides: object) -> None:
        super().__init__(params, **overrides)
        self.similarity: sp.csr_matrix | None = None
        self.fallback: PopularityRecommender | None = None
        self._history: History | None = None
        self._prior: np.ndarray | None = None

    @abstractmethod
    def _neighbours(self, matrix: sp.csr_matrix, threads: int) -> sp.csr_matrix:
        """W (items x items, float32) from the users x items training matrix."""

    def fit(self, data: TrainingData) -> Self:
        p = self.params
        history = History.from_data(data, keep_values=True)
        assert history.values is not None
        matrix = sp.csr_matrix(
            (history.values, history.indices, history.indptr), shape=(data.n_users, data.n_items)
        )
        similarity = self._neighbours(matrix, thread_count(p.num_threads))
        scores = item_popularity(data, p.fallback_half_life_days)[0]
        fallback = PopularityRecommender(half_life_days=p.fallback_half_life_days)
        return self._restore(similarity, fallback.restore(scores, history), history)

    def _restore(
        self, similarity: sp.csr_matrix, fallback: PopularityRecommender, history: History
    ) -> Self:
        assert fallback.order is not None
        self.similarity = similarity
        self.fallback = fallback
        self._history = history
        self._prior = rank_prior(fallback.order)
        return self

    def _fallback_lists(self, rows: np.ndarray, k: int) -> np.ndarray:
        assert self.fallback is not None
        return self.fallback.recommend_rows(rows, k)

    def _score_block(self, rows: np.ndarray) -> np.ndarray:
        similarity, prior = self.similarity, self._prior
        assert similarity is not None and prior is not None
        scores = (self.history.submatrix(rows) @ similarity).toarray()
        # Items linked to nothing the user watched score 0: rank those by popularity
        # (the prior is negative) so that the list is full and not arbitrary.
        np.copyto(scores, np.broadcast_to(prior, scores.shape), where=scores <= 0)
        return scores

    def _scoring_threads(self) -> int:
        return thread_count(self.params.num_threads)

    def recommend_history(
        self,
        user_id: int,
        items: np.ndarray,
        weights: np.ndarray | None = None,
        k: int = LIST_LENGTH,
    ) -> np.ndarray:
        assert self.similarity is not None and self._prior is not None
        items = check_items(np.asarray(items, dtype=np.int64), self.history.n_items)
        weights = np.ones(len(items), np.float32) if weights is None else np.asarray(weights)
        row = sp.csr_matrix(
            (weights.astype(np.float32), (np.zeros(len(items), np.int64), items)),
            shape=(1, self.history.n_items),
        )
        scores = (row @ self.similarity).toarray()
        np.copyto(scores, np.broadcast_to(self._prior, scores.shape), where=scores <= 0)
        scores[0, items] = -np.inf
        return top_k(scores, check_k(k))[0]

    def save(self, directory: Path) -> None:
        assert self.similarity is not None and self.fallback is not None
        self._save_params(directory)
        self.history.save(directory)
        np.save(directory / "similarity_indptr.npy", self.similarity.indptr)
        np.save(directory / "similarity_indices.npy", self.similarity.indices)
        np.save(directory / "similarity_data.npy", self.similarity.data)
        self.fallback.save_scores(directory, "fallback")

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        model = cls(cls._load_params(directory))
        history = History.load(directory)
        n_items = history.n_items
        similarity = sp.csr_matrix(
            (
                load_array(directory, "similarity_data", mmap=False),
                load_array(directory, "similarity_indices", mmap=False),
                load_array(directory, "similarity_indptr", mmap=False),
            ),
            shape=(n_items, n_items),
        )
        fallback = PopularityRecommender.load_embedded(
            directory, "fallback", model.params.fallback_half_life_days, history
        )
        return model._restore(similarity, fallback, history)


class ItemKNNRecommender(NeighbourRecommender):
    name = "itemknn"
    Params = Params
    params: Params

    def _neighbours(self, matrix: sp.csr_matrix, threads: int) -> sp.csr_matrix:
        p = self.params
        if p.weighting == "bm25":
            matrix = bm25_weighted(matrix, p.bm25_k1, p.bm25_b)
        return item_similarity(matrix, p.neighbours, p.shrinkage, threads)
