"""EASE: an item-item linear autoencoder with a closed-form solution (Steck 2019).

B minimises |X - X B|^2 + l2 |B|^2 subject to diag(B) = 0, where X is the users x items
training matrix (confidences). With P = (X^T X + l2 I)^-1 the solution is

    B = I - P / diag(P)   (column j divided by P_jj), so B_ij = -P_ij / P_jj, B_jj = 0,

and a user's score for item j is (x_u B)_j. One matrix inverse replaces all training.

B is dense: items^2 floats. It is learnt over the `max_items` items with the most watchers
only (8,000 by default: 256 MB of float32 where all 27k movies would take 2.9 GB and a
cubic solve 38 times longer); the rest, the rarely watched tail, is ranked after them by
popularity, the same prior item-kNN gives items linked to nothing the user watched.

Numerics: X^T X is accumulated in float64 and inverted in place with LAPACK's Cholesky
(potrf, potri), so the solve never holds a second items^2 array; B is kept in float32, which
is ample for ranking (a float32 solve changed no top-20 list in our trials, but it loses
digits as l2 gets small relative to the Gram's largest eigenvalues, and saved no time).

Measured at 8,000 items (synthetic: 200k users, 5M interactions over 27k movies, Zipf-like
popularity) on the machine's two cores, shared with other work (load average 2-4): fit
13-24 s with the inverse on one thread (Gram 3 s, Cholesky 3 s, inverse 5.5 s when
quiet); on two threads 8.5 s at best but 23-31 s while other processes ran, because
LAPACK's threads work in lockstep and wait for the busy core (at 3,000 items: 1.0 s on
one thread, 5.3 s on two). Hence `solve_threads` = 1 by default. Peak 0.83 GB of arrays
(the float64 Gram, 512 MB, and B, 256 MB), resident memory +0.9 GB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp
from scipy.linalg import lapack
from threadpoolctl import threadpool_limits

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


@dataclass(frozen=True)
class Params(ModelParams):
    l2: float = 500.0  # ridge penalty; MovieLens-scale data wants hundreds
    max_items: int = 8000  # B is learnt over the items with the most watchers only
    num_threads: int = 0  # 0: all cores; the Gram's blocks and scoring
    solve_threads: int = 1  # LAPACK's threads for the inverse (0: all cores): see above
    fallback_half_life_days: float = 14.0

    def __post_init__(self) -> None:
        require_float("l2", self.l2, 0.0, strict=True)
        if self.l2 == float("inf"):
            raise ValueError("l2 must be finite")
        require_int("max_items", self.max_items, 1)
        require_int("num_threads", self.num_threads, 0)
        require_int("solve_threads", self.solve_threads, 0)
        require_float("fallback_half_life_days", self.fallback_half_life_days, 0.0, strict=True)


def gram(by_item: sp.csr_matrix, threads: int) -> np.ndarray:
    """X^T X as a dense float64 array, from X^T (items x users), in blocks of items: the
    sparse product of all items at once would hold items^2 entries as COO triples."""
    n = by_item.shape[0]
    out = np.empty((n, n), dtype=np.float64)
    by_user = by_item.T.tocsr()

    def work(start: int, stop: int) -> None:
        out[start:stop] = (by_item[start:stop] @ by_user).toarray()

    run_blocks(n, block_rows(n, 8), threads, work)
    return out


def ease_weights(
    by_item: sp.csr_matrix, l2: float, threads: int, solve_threads: int = 1
) -> np.ndarray:
    """B (items x items, float32) for the items of X^T (items x users); the Gram on
    `threads`, the inverse on `solve_threads` BLAS threads."""
    n = by_item.shape[0]
    if n == 0:  # nothing was watched (LAPACK refuses an empty matrix)
        return np.empty((0, 0), dtype=np.float32)
    a = gram(by_item, threads)
    a[np.diag_indices(n)] += l2
    # `a` is symmetric, so its transpose is the same matrix in Fortran order: LAPACK
    # factors and inverts it in place. The inverse is then in a's lower triangle.
    with threadpool_limits(limits=solve_threads, user_api="blas"):
        factor, info = lapack.dpotrf(a.T, lower=0, clean=0, overwrite_a=1)
        if info == 0:
            factor, info = lapack.dpotri(factor, lower=0, overwrite_c=1)
    if info != 0:  # X^T X + l2 I with l2 > 0 is positive definite: only NaN/inf get here
        raise np.linalg.LinAlgError(f"EASE: LAPACK failed (info {info})")
    inverse = factor.T
    diagonal = np.diag(inverse).copy()
    weights = np.empty((n, n), dtype=np.float32)
    step = block_rows(n, 8)
    for start in range(0, n, step):
        stop = min(start + step, n)
        rows = inverse[start:stop]
        # Upper triangle from the lower one: row r, column c > r is column r of row c.
        upper = np.triu(np.ones((stop - start, n), dtype=bool), k=start + 1)
        rows[upper] = inverse[:, start:stop].T[upper]
        np.divide(rows, -diagonal[None, :], out=weights[start:stop], casting="same_kind")
    weights[np.diag_indices(n)] = 0.0
    return weights


class EASERecommender(FittedHistory, Recommender):
    name = "ease"
    Params = Params
    params: Params

    def __init__(self, params: ModelParams | None = None, **overrides: object) -> None:
        super().__init__(params, **overrides)
        self.weights: np.ndarray | None = None  # float32 B over the learnt items
        self.learnt: np.ndarray | None = None  # int64 item index of each row of B
        self.fallback: PopularityRecommender | None = None
        self._history: History | None = None
        self._position: np.ndarray | None = None  # item -> row of B, -1 if not learnt
        self._prior: np.ndarray | None = None

    def fit(self, data: TrainingData) -> Self:
        p = self.params
        history = History.from_data(data, keep_values=True)
        assert history.values is not None
        watchers = np.bincount(history.indices, minlength=data.n_items)
        ranked = np.argsort(-watchers, kind="stable")
        learnt = np.sort(ranked[: min(p.max_items, int(np.count_nonzero(watchers)))])
        matrix = sp.csr_matrix(
            (history.values, history.indices, history.indptr), shape=(data.n_users, data.n_items)
        )
        by_item = matrix.T.tocsr()[learnt]
        threads = thread_count(p.num_threads)
        weights = ease_weights(by_item, p.l2, threads, thread_count(p.solve_threads))
        scores = item_popularity(data, p.fallback_half_life_days)[0]
        fallback = PopularityRecommender(half_life_days=p.fallback_half_life_days)
        return self._restore(weights, learnt, fallback.restore(scores, history), history)

    def _restore(
        self,
        weights: np.ndarray,
        learnt: np.ndarray,
        fallback: PopularityRecommender,
        history: History,
    ) -> Self:
        assert fallback.order is not None
        self.weights, self.learnt, self.fallback = weights, learnt, fallback
        self._history = history
        self._position = np.full(history.n_items, -1, dtype=np.int64)
        self._position[learnt] = np.arange(len(learnt))
        self._prior = rank_prior(fallback.order)
        return self

    def _fallback_lists(self, rows: np.ndarray, k: int) -> np.ndarray:
        assert self.fallback is not None
        return self.fallback.recommend_rows(rows, k)

    def _score_block(self, rows: np.ndarray) -> np.ndarray:
        return self._scores(self.history.submatrix(rows))

    def _scoring_threads(self) -> int:
        return thread_count(self.params.num_threads)

    def _scores(self, interactions: sp.csr_matrix) -> np.ndarray:
        """Dense float32 scores for rows of (users x all items) interactions: learnt items
        by x B, shifted above the prior of the others (in (-1, 0)); a row with nothing
        learnt in its history is all prior, popularity order."""
        weights, position, prior = self.weights, self._position, self._prior
        assert weights is not None and position is not None and prior is not None
        n_rows, n_learnt = interactions.shape[0], len(weights)
        scores = np.empty((n_rows, len(prior)), dtype=np.float32)
        scores[:] = prior
        where = position[interactions.indices]
        learnt = where >= 0
        indptr = np.concatenate([[0], np.cumsum(learnt)])[interactions.indptr]
        if n_learnt == 0 or indptr[-1] == 0:
            return scores
        x = sp.csr_matrix((interactions.data[learnt], where[learnt], indptr), (n_rows, n_learnt))
        ease = np.asarray(x @ weights, dtype=np.float32)
        if n_learnt < len(prior):
            # Above every prior, order kept: ease - min + 1 >= 1 > 0 > prior.
            ease -= ease.min(axis=1, keepdims=True)
            ease += np.float32(1.0)
        assert self.learnt is not None
        scored = np.diff(indptr) > 0
        scores[np.ix_(scored, self.learnt)] = ease[scored]
        return scores

    def recommend_history(
        self,
        user_id: int,
        items: np.ndarray,
        weights: np.ndarray | None = None,
        k: int = LIST_LENGTH,
    ) -> np.ndarray:
        items = check_items(np.asarray(items, dtype=np.int64), self.history.n_items)
        weights = np.ones(len(items), np.float32) if weights is None else np.asarray(weights)
        row = sp.csr_matrix(
            (weights.astype(np.float32), (np.zeros(len(items), np.int64), items)),
            shape=(1, self.history.n_items),
        )
        scores = self._scores(row)
        scores[0, items] = -np.inf
        return top_k(scores, check_k(k))[0]

    def save(self, directory: Path) -> None:
        assert self.weights is not None and self.learnt is not None
        assert self.fallback is not None
        self._save_params(directory)
        self.history.save(directory)
        np.save(directory / "ease_weights.npy", self.weights)
        np.save(directory / "ease_items.npy", self.learnt)
        self.fallback.save_scores(directory, "fallback")

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        model = cls(cls._load_params(directory))
        history = History.load(directory)
        # B is mapped, not read: loading is instant and processes serving the same model
        # share its pages.
        weights = load_array(directory, "ease_weights")
        learnt = load_array(directory, "ease_items", mmap=False)
        fallback = PopularityRecommender.load_embedded(
            directory, "fallback", model.params.fallback_half_life_days, history
        )
        return model._restore(weights, learnt, fallback, history)
