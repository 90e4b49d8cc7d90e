"""Bayesian Personalized Ranking (Rendle et al. 2009), trained by the `implicit` library.

BPR learns user and item factors so that a user's watched items score above unwatched
ones: stochastic gradient steps on log sigmoid(x_u . (y_i - y_j)) for sampled triples
(user, watched i, unwatched j), with L2 regularisation. implicit's implementation
(implicit.cpu.bpr) treats every stored interaction as a 1 (confidence values are ignored),
samples negatives in proportion to their popularity, and gives each item a bias: the last
column of its item factors, matched by a constant 1 in the last column of the user
factors, so x_u . y_j already includes it.

Everything after training is ours, as for ALS: blocked float32 user_factors @
item_factors.T for many users. BPR has no closed-form fold-in for a history the model never
saw; `user_vector` uses the (weighted) mean of the history's item factors, an
approximation that points where the trained factor of such a user would point (towards
what they watched) but is not the factor BPR would learn.

Determinism: implicit's SGD threads update the shared factors without locks, so a fit on
two threads depends on the scheduling (two fits with the same seed differ). A seeded fit
(random_state set, as the pipeline always does) therefore trains on one thread; only an
unseeded one uses num_threads. On the two shared cores of our machines one thread was
also the faster: 1.2 s against 2.2 s for 100 epochs over 66k interactions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Self

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
    check_items,
    check_k,
    single_threaded_blas,
    thread_count,
    top_k,
)


@dataclass(frozen=True)
class Params(ModelParams):
    factors: int = 64  # plus one bias column
    learning_rate: float = 0.01
    regularization: float = 0.01
    iterations: int = 100  # epochs: each samples as many triples as there are interactions
    random_state: int | None = 0  # set: the fit is reproducible (and on one thread)
    num_threads: int = 0  # 0: all cores; scoring, and fitting when random_state is None
    fallback_half_life_days: float = 14.0

    def __post_init__(self) -> None:
        require_int("factors", self.factors, 1)
        require_float("learning_rate", self.learning_rate, 0.0, strict=True)
        require_float("regularization", self.regularization, 0.0)
        if self.learning_rate == float("inf") or self.regularization == float("inf"):
            raise ValueError("learning_rate and regularization must be finite")
        require_int("iterations", self.iterations, 1)
        if self.random_state is not None:
            require_int("random_state", self.random_state, 0)
        require_int("num_threads", self.num_threads, 0)
        require_float("fallback_half_life_days", self.fallback_half_life_days, 0.0, strict=True)


def initial_factors(rng: np.random.Generator, rows: int, factors: int) -> np.ndarray:
    """implicit's starting point, uniform in [-0.5, 0.5) / factors with the bias column,
    drawn in place in float32 (implicit's own draw is float64, then copied)."""
    out = np.empty((rows, factors + 1), dtype=np.float32)
    rng.random(out=out, dtype=np.float32)
    out -= np.float32(0.5)
    out /= np.float32(factors)
    return out


class BPRRecommender(FittedHistory, Recommender):
    name = "bpr"
    Params = Params
    params: Params

    def __init__(self, params: ModelParams | None = None, **overrides: object) -> None:
        super().__init__(params, **overrides)
        self.user_factors: np.ndarray | None = None  # float32 (users, factors + 1), last 1
        self.item_factors: np.ndarray | None = None  # float32 (items, factors + 1), last bias
        self.fallback: PopularityRecommender | None = None
        self._history: History | None = None

    def fit(self, data: TrainingData) -> Self:
        # Imported here, as in als.py: a process only serving a saved model never needs it.
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        p = self.params
        history = History.from_data(data)
        liked = sp.csr_matrix(
            (np.ones(len(history.indices), np.float32), history.indices, history.indptr),
            shape=(data.n_users, data.n_items),
        )
        rng = np.random.default_rng(p.random_state)
        users = initial_factors(rng, data.n_users, p.factors)
        items = initial_factors(rng, data.n_items, p.factors)
        # As implicit does: nothing to learn from for rows without interactions.
        users[np.diff(liked.indptr) == 0] = 0.0
        items[np.bincount(liked.indices, minlength=data.n_items) == 0] = 0.0
        users[:, p.factors] = 1.0
        if liked.nnz:
            threads = 1 if p.random_state is not None else thread_count(p.num_threads)
            model = BayesianPersonalizedRanking(
                factors=p.factors,
                learning_rate=p.learning_rate,
                regularization=p.regularization,
                dtype=np.float32,
                iterations=p.iterations,
                num_threads=threads,
                random_state=p.random_state,
            )
            model.user_factors, model.item_factors = users, items
            with single_threaded_blas():
                model.fit(liked, show_progress=False)
            users, items = model.user_factors, model.item_factors
        self.user_factors = np.ascontiguousarray(users, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(items, dtype=np.float32)
        scores = item_popularity(data, p.fallback_half_life_days)[0]
        fallback = PopularityRecommender(half_life_days=p.fallback_half_life_days)
        self.fallback = fallback.restore(scores, history)
        self._history = history
        return self

    def _fallback_lists(self, rows: np.ndarray, k: int) -> np.ndarray:
        assert self.fallback is not None
        return self.fallback.recommend_rows(rows, k)

    def _score_block(self, rows: np.ndarray) -> np.ndarray:
        assert self.user_factors is not None
        return self.user_factors[rows] @ self._item_matrix.T

    def _scoring_threads(self) -> int:
        return thread_count(self.params.num_threads)

    @property
    def _item_matrix(self) -> np.ndarray:
        if self.item_factors is None:
            raise RuntimeError(f"{self.name} model is not fitted")
        return self.item_factors

    def user_vector(
        self, item_indices: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """A user factor for this history: the weighted mean of its items' factors, and 1
        in the bias column (see the module's docstring: an approximation). Weights
        default to 1; repeated items add up. An empty history gives the zero vector."""
        item_factors = self._item_matrix
        items = check_items(item_indices, len(item_factors))
        weights = np.ones(len(items)) if weights is None else np.asarray(weights, np.float64)
        if weights.shape != items.shape:
            raise ValueError("one weight per item expected")
        if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
            raise ValueError("weights must be positive and finite")
        vector = np.zeros(item_factors.shape[1], dtype=np.float32)
        if len(items):
            mean = weights @ item_factors[items, :-1].astype(np.float64) / weights.sum()
            vector[:-1] = mean
            vector[-1] = 1.0
        return vector

    def recommend_history(
        self,
        user_id: int,
        items: np.ndarray,
        weights: np.ndarray | None = None,
        k: int = LIST_LENGTH,
    ) -> np.ndarray:
        k = check_k(k)
        items = check_items(np.asarray(items, dtype=np.int64), self.history.n_items)
        vector = self.user_vector(items, weights)
        if not np.any(vector):  # no history: nothing to score from
            assert self.fallback is not None
            return self.fallback.ranked_excluding(items, k)
        with single_threaded_blas():
            scores = (self._item_matrix @ vector)[None, :]
        scores[0, items] = -np.inf
        return top_k(scores, k)[0]

    def save(self, directory: Path) -> None:
        assert self.user_factors is not None and self.fallback is not None
        self._save_params(directory)
        self.history.save(directory)
        np.save(directory / "user_factors.npy", self.user_factors)
        np.save(directory / "item_factors.npy", self._item_matrix)
        self.fallback.save_scores(directory, "fallback")

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        model = cls(cls._load_params(directory))
        history = History.load(directory)
        # Mapped like ALS's: recommending touches only the rows of the users asked for.
        model.user_factors = load_array(directory, "user_factors")
        model.item_factors = load_array(directory, "item_factors", mmap=False)
        model.fallback = PopularityRecommender.load_embedded(
            directory, "fallback", model.params.fallback_half_life_days, history
        )
        model._history = history
        return model
