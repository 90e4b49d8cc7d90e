"""Implicit-feedback matrix factorisation (ALS), trained by the `implicit` library.

Training is implicit's conjugate-gradient ALS on the CPU (Hu, Koren & Volinsky's model:
confidence c = alpha x value where the user watched, 1 elsewhere). Everything after
training is ours: scoring many users is a blocked float32 `user_factors @ item_factors.T`
with argpartition, and `user_vector` folds a fresh history into a user vector by solving
the same least-squares step ALS solves for a user, against the fixed item factors, so the
serving layer can refresh a list from the latest events without retraining.
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

# Below this many interactions, "all cores" trains on one (see _fit_threads).
SMALL_FIT_NNZ = 100_000


@dataclass(frozen=True)
class Params(ModelParams):
    factors: int = 64
    regularization: float = 0.01
    alpha: float = 1.0  # confidence = alpha x matrix value
    iterations: int = 15
    random_state: int | None = 0
    calculate_training_loss: bool = False
    num_threads: int = 0  # 0: all cores
    fallback_half_life_days: float = 14.0

    def __post_init__(self) -> None:
        require_int("factors", self.factors, 1)
        require_float("regularization", self.regularization, 0.0)
        require_float("alpha", self.alpha, 0.0, strict=True)
        if self.alpha == float("inf") or self.regularization == float("inf"):
            raise ValueError("alpha and regularization must be finite")
        require_int("iterations", self.iterations, 1)
        if self.random_state is not None:
            require_int("random_state", self.random_state, 0)
        if not isinstance(self.calculate_training_loss, bool):
            raise ValueError("calculate_training_loss must be a bool")
        require_int("num_threads", self.num_threads, 0)
        require_float("fallback_half_life_days", self.fallback_half_life_days, 0.0, strict=True)


def initial_factors(rng: np.random.Generator, rows: int, factors: int) -> np.ndarray:
    """implicit's starting point, uniform in [0, 0.01), but drawn in place: implicit's
    own draw-then-scale briefly holds two copies of the (1M x 64: 256 MB) user factors."""
    out = np.empty((rows, factors), dtype=np.float32)
    rng.random(out=out, dtype=np.float32)
    out *= np.float32(0.01)
    return out


class ALSRecommender(FittedHistory, Recommender):
    name = "als"
    Params = Params
    params: Params

    def __init__(self, params: ModelParams | None = None, **overrides: object) -> None:
        super().__init__(params, **overrides)
        self.user_factors: np.ndarray | None = None  # float32 (users, factors)
        self.item_factors: np.ndarray | None = None  # float32 (items, factors)
        self.fallback: PopularityRecommender | None = None
        self._history: History | None = None
        self._gram: np.ndarray | None = None  # YtY + regularization I, float64

    def fit(self, data: TrainingData) -> Self:
        # Imported here: half a second of imports that a process only serving a saved
        # model never needs.
        from implicit.cpu.als import AlternatingLeastSquares

        p = self.params
        history = History.from_data(data, keep_values=True)
        assert history.values is not None
        # Confidences as float32 sharing the index arrays of the history: implicit would
        # otherwise copy the whole matrix once for the dtype and again for alpha.
        confidence = history.values
        if p.alpha != 1.0:
            confidence = np.multiply(confidence, p.alpha, dtype=np.float32)
        history.values = None  # only needed for exclusion from here on
        cui = sp.csr_matrix(
            (confidence, history.indices, history.indptr), shape=(data.n_users, data.n_items)
        )
        # implicit's own threads do the work; a multi-threaded BLAS underneath them only
        # oversubscribes the cores (implicit warns about exactly this).
        with single_threaded_blas():
            model = AlternatingLeastSquares(
                factors=p.factors,
                regularization=p.regularization,
                alpha=1.0,  # already applied above
                dtype=np.float32,
                iterations=p.iterations,
                calculate_training_loss=p.calculate_training_loss,
                num_threads=self._fit_threads(cui.nnz),
                random_state=p.random_state,
            )
            rng = np.random.default_rng(p.random_state)
            model.user_factors = initial_factors(rng, data.n_users, p.factors)
            model.item_factors = initial_factors(rng, data.n_items, p.factors)
            model.fit(cui, show_progress=False)
        self.user_factors = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        scores = item_popularity(data, p.fallback_half_life_days)[0]
        fallback = PopularityRecommender(half_life_days=p.fallback_half_life_days)
        self.fallback = fallback.restore(scores, history)
        self._history = history
        self._gram = None
        return self

    def with_factors(
        self, data: TrainingData, user_factors: np.ndarray, item_factors: np.ndarray
    ) -> Self:
        """This model as fit() leaves it, with factors learned elsewhere (the Spark engine,
        movierec/training/spark_als.py): data's rows and columns, in its order."""
        shape = (data.n_users, self.params.factors), (data.n_items, self.params.factors)
        if (user_factors.shape, item_factors.shape) != shape:
            raise ValueError(f"factors of shape {shape} expected")
        history = History.from_data(data)
        self.user_factors = np.ascontiguousarray(user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        half_life = self.params.fallback_half_life_days
        scores = item_popularity(data, half_life)[0]
        self.fallback = PopularityRecommender(half_life_days=half_life).restore(scores, history)
        self._history = history
        self._gram = None
        return self

    def _fit_threads(self, nnz: int) -> int:
        # Each ALS half-step is a parallel region; on a small matrix the threads only wait
        # for one another (a 30 x 40 fit: 3 ms on one thread, 600 ms on two busy cores).
        if self.params.num_threads == 0 and nnz < SMALL_FIT_NNZ:
            return 1
        return thread_count(self.params.num_threads)

    def _fallback_lists(self, rows: np.ndarray, k: int) -> np.ndarray:
        # A user without training items has a factor of ~0 (all scores tie): popularity.
        assert self.fallback is not None
        return self.fallback.recommend_rows(rows, k)

    def _score_block(self, rows: np.ndarray) -> np.ndarray:
        return self._user_matrix[rows] @ self._item_matrix.T

    def _scoring_threads(self) -> int:
        return thread_count(self.params.num_threads)

    @property
    def _user_matrix(self) -> np.ndarray:
        assert self.user_factors is not None
        return self.user_factors

    @property
    def _item_matrix(self) -> np.ndarray:
        if self.item_factors is None:
            raise RuntimeError(f"{self.name} model is not fitted")
        return self.item_factors

    def user_vector(
        self, item_indices: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """The factor ALS would give a user with this history, item factors held fixed:
        x = (YtY + reg I + Yt (C - I) Y)^-1 Yt C p, with C = alpha x weights on the user's
        items (weights default to 1; repeated items add up, as in the training matrix).
        Exact where training's conjugate-gradient steps are approximate."""
        item_factors = self._item_matrix
        items = check_items(item_indices, len(item_factors))
        weights = np.ones(len(items)) if weights is None else np.asarray(weights, np.float64)
        if weights.shape != items.shape:
            raise ValueError("one weight per item expected")
        if not np.all(np.isfinite(weights)) or np.any(weights <= 0):
            raise ValueError("weights must be positive and finite")
        unique, inverse = np.unique(items, return_inverse=True)
        summed = np.bincount(inverse, weights=weights, minlength=len(unique))
        confidence = summed.astype(np.float64) * self.params.alpha
        y = item_factors[unique].astype(np.float64)
        with single_threaded_blas():
            if self._gram is None:
                full = item_factors.astype(np.float64)
                self._gram = full.T @ full + self.params.regularization * np.eye(full.shape[1])
            a = self._gram + y.T @ (y * (confidence - 1.0)[:, None])
            return np.linalg.solve(a, y.T @ confidence).astype(np.float32)

    def score_vector(
        self, vector: np.ndarray, exclude_items: np.ndarray | None = None, k: int = LIST_LENGTH
    ) -> np.ndarray:
        """One list (k item indices, -1 padded) for a user vector, never any of
        exclude_items; a zero vector (no history) gets the popularity fallback."""
        k = check_k(k)
        item_factors = self._item_matrix
        seen = check_items(
            np.empty(0) if exclude_items is None else exclude_items, len(item_factors)
        )
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if not np.any(vector):
            assert self.fallback is not None
            return self.fallback.ranked_excluding(seen, k)
        with single_threaded_blas():
            scores = (item_factors @ vector)[None, :]
        scores[0, seen] = -np.inf
        return top_k(scores, k)[0]

    def recommend_history(
        self,
        user_id: int,
        items: np.ndarray,
        weights: np.ndarray | None = None,
        k: int = LIST_LENGTH,
    ) -> np.ndarray:
        items = np.asarray(items, dtype=np.int64)
        if len(items) == 0:
            return self.score_vector(np.zeros(self._item_matrix.shape[1]), items, k)
        return self.score_vector(self.user_vector(items, weights), items, k)

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
        # The user factors (256 MB at 1M users) are mapped, not read: loading is instant
        # and recommending touches only the rows of the users asked for.
        model.user_factors = load_array(directory, "user_factors")
        model.item_factors = load_array(directory, "item_factors", mmap=False)
        model.fallback = PopularityRecommender.load_embedded(
            directory, "fallback", model.params.fallback_half_life_days, history
        )
        model._history = history
        return model
