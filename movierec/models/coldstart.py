"""Cold start: demographics for users without history, genres for movies without viewers.

A user without history gets what is popular (time-decayed) among similar users: their age
group x gender segment if enough users with history are in it, else their occupation's,
else everyone's. A user with history gets a content score, the cosine between the genres
of what they watched and each movie's genres (genres weighted by rarity, so that Drama
does not dominate), blended with their segment's popularity on a log scale. A movie
nobody has watched yet still has genres, so it can be recommended from day one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Self

import numpy as np

from movierec.models.base import (
    LIST_LENGTH,
    ModelParams,
    Recommender,
    TrainingData,
    require_float,
    require_int,
)
from movierec.models.history import FittedHistory, History, load_array
from movierec.models.popularity import item_popularity
from movierec.models.scoring import (
    check_items,
    check_k,
    thread_count,
    top_k,
)
from movierec.vocab import AGE_GROUPS, GENDERS, GENRES, OCCUPATIONS

# Segments, in one table: age group x gender, then occupations, then everyone.
N_DEMOGRAPHIC = len(AGE_GROUPS) * len(GENDERS)
FIRST_OCCUPATION = N_DEMOGRAPHIC
GLOBAL = FIRST_OCCUPATION + len(OCCUPATIONS)
N_SEGMENTS = GLOBAL + 1
# Lowest age of every group but the first (vocab.AGE_GROUPS is sorted and contiguous).
AGE_BOUNDS = np.array([low for low, _, _ in AGE_GROUPS[1:]])


@dataclass(frozen=True)
class Params(ModelParams):
    popularity_weight: float = 0.3  # share of popularity in the blend, in [0, 1]
    min_segment_users: int = 20  # users with history a segment needs to be trusted
    half_life_days: float = 14.0
    num_threads: int = 0  # 0: all cores

    def __post_init__(self) -> None:
        require_float("popularity_weight", self.popularity_weight, 0.0)
        if self.popularity_weight > 1.0:
            raise ValueError(f"popularity_weight must be <= 1, got {self.popularity_weight!r}")
        require_int("min_segment_users", self.min_segment_users, 1)
        require_float("half_life_days", self.half_life_days, 0.0, strict=True)
        require_int("num_threads", self.num_threads, 0)


def age_groups(age: np.ndarray) -> np.ndarray:
    """vocab.age_group of each age, vectorised; -1 for unknown (negative) ages."""
    age = np.asarray(age, dtype=np.int64)
    return np.where(age >= 0, np.searchsorted(AGE_BOUNDS, age, side="right"), -1)


def demographic_segments(
    age: np.ndarray | None, gender: np.ndarray | None, occupation: np.ndarray | None, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """(age x gender segment, occupation segment) of n users, -1 where unknown."""
    unknown = np.full(n, -1, dtype=np.int64)
    group = unknown if age is None else age_groups(age)
    sex = unknown if gender is None else np.asarray(gender, dtype=np.int64)
    job = unknown if occupation is None else np.asarray(occupation, dtype=np.int64)
    if not len(group) == len(sex) == len(job) == n:
        raise ValueError("one age, gender and occupation per user expected")
    known = (group >= 0) & (sex >= 0) & (sex < len(GENDERS))
    by_demography = np.where(known, group * len(GENDERS) + sex, -1)
    by_job = np.where((job >= 0) & (job < len(OCCUPATIONS)), FIRST_OCCUPATION + job, -1)
    return by_demography, by_job


def genre_features(masks: np.ndarray | None, n_items: int) -> np.ndarray:
    """Unit-length genre vectors per item, each genre weighted by a smoothed idf."""
    if masks is None:
        return np.zeros((n_items, len(GENRES)), dtype=np.float32)
    bits = (np.asarray(masks, np.int64)[:, None] >> np.arange(len(GENRES))) & 1
    idf = np.log((1.0 + n_items) / (1.0 + bits.sum(axis=0))) + 1.0
    features = bits * idf
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.where(norms > 0, norms, 1.0)).astype(np.float32)


class ColdStartRecommender(FittedHistory, Recommender):
    name = "coldstart"
    Params = Params
    params: Params
    score_bytes = 8  # the blended scores and the content product beside them

    def __init__(self, params: ModelParams | None = None, **overrides: object) -> None:
        super().__init__(params, **overrides)
        self.segment_scores: np.ndarray | None = None  # float64 (N_SEGMENTS, items)
        self.segment_support: np.ndarray | None = None  # users with history per segment
        self.user_segment: np.ndarray | None = None  # resolved segment per training row
        self.features: np.ndarray | None = None  # float32 (items, genres)
        self._history: History | None = None
        self._orders = np.empty((0, 0), dtype=np.int32)  # each segment's ranking
        self._popularity = np.empty((0, 0), dtype=np.float32)  # log-scaled, per segment

    def fit(self, data: TrainingData) -> Self:
        p = self.params
        history = History.from_data(data, keep_values=True)
        active = np.diff(history.indptr) > 0
        by_demography, by_job = demographic_segments(
            data.user_age, data.user_gender, data.user_occupation, data.n_users
        )
        scores = np.vstack(
            [
                item_popularity(data, p.half_life_days, by_demography, N_DEMOGRAPHIC),
                # Unknown occupations land below 0, where item_popularity skips them.
                item_popularity(
                    data, p.half_life_days, by_job - FIRST_OCCUPATION, len(OCCUPATIONS)
                ),
                item_popularity(data, p.half_life_days),
            ]
        )
        segments = np.concatenate([by_demography[active], by_job[active]])
        support = np.bincount(segments[segments >= 0], minlength=N_SEGMENTS)
        support[GLOBAL] = int(active.sum())
        self.segment_scores, self.segment_support = scores, support
        self.user_segment = self._resolve(by_demography, by_job).astype(np.int8)
        self.features = genre_features(data.item_genres, data.n_items)
        return self._restore(history)

    def _restore(self, history: History) -> Self:
        scores = self.segment_scores
        assert scores is not None
        n_items = scores.shape[1]
        # Each segment's ranking; equal scores go to the globally more popular, then the
        # lower index, so the global segment's ranking is exactly the popularity model's.
        index = np.arange(n_items)
        self._orders = np.stack(
            [np.lexsort((index, -scores[GLOBAL], -row)) for row in scores]
        ).astype(np.int32)
        top = scores.max(axis=1, initial=0.0)[:, None]
        logs = np.log1p(np.maximum(scores, 0.0)) / np.log1p(np.where(top > 0, top, 1.0))
        self._popularity = logs.astype(np.float32)  # in [0, 1]
        self._history = history
        return self

    def _resolve(self, by_demography: np.ndarray, by_job: np.ndarray) -> np.ndarray:
        """The most specific segment of each user that has enough support."""
        support, least = self.segment_support, self.params.min_segment_users
        assert support is not None
        segment = np.full(len(by_demography), GLOBAL, dtype=np.int64)
        for candidates in (by_job, by_demography):  # later, more specific, wins
            trusted = (candidates >= 0) & (support[np.maximum(candidates, 0)] >= least)
            segment[trusted] = candidates[trusted]
        return segment

    def _segment_lists(self, segments: np.ndarray, k: int) -> np.ndarray:
        out = np.full((len(segments), k), -1, dtype=np.int64)
        kept = min(k, self._orders.shape[1])
        out[:, :kept] = self._orders[segments, :kept]
        return out

    def recommend_for_profiles(
        self, age: np.ndarray, gender: np.ndarray, occupation: np.ndarray, k: int = LIST_LENGTH
    ) -> np.ndarray:
        """Lists for users the training data never saw, from their demographics alone
        (age in years, gender 0 M / 1 F, occupation index; -1 where unknown)."""
        k = check_k(k)
        _ = self.history
        by_demography, by_job = demographic_segments(age, gender, occupation, len(age))
        return self._segment_lists(self._resolve(by_demography, by_job), k)

    def _fallback_lists(self, rows: np.ndarray, k: int) -> np.ndarray:
        assert self.user_segment is not None
        segments = np.full(len(rows), GLOBAL, dtype=np.int64)  # unknown users: everyone's
        segments[rows >= 0] = self.user_segment[rows[rows >= 0]]
        return self._segment_lists(segments, k)

    def _score_block(self, rows: np.ndarray) -> np.ndarray:
        features, weight = self.features, self.params.popularity_weight
        assert self.user_segment is not None and features is not None
        profile = np.asarray(self.history.submatrix(rows) @ features, dtype=np.float32)
        norms = np.linalg.norm(profile, axis=1, keepdims=True)
        profile /= np.where(norms > 0, norms, 1.0)
        scores = self._popularity[self.user_segment[rows]]  # a copy
        scores *= weight
        scores += (1.0 - weight) * (profile @ features.T)
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
        history, features = self.history, self.features
        assert self.user_segment is not None and features is not None
        items = check_items(np.asarray(items, dtype=np.int64), history.n_items)
        row = history.rows(np.array([user_id]))[0]
        segment = int(self.user_segment[row]) if row >= 0 else GLOBAL
        if len(items) == 0:
            return self._segment_lists(np.array([segment]), check_k(k))[0]
        weights = np.ones(len(items), np.float32) if weights is None else np.asarray(weights)
        profile = (weights.astype(np.float32) @ features[items])[None, :]
        profile /= max(float(np.linalg.norm(profile)), 1e-12)
        weight = self.params.popularity_weight
        scores = weight * self._popularity[[segment]] + (1.0 - weight) * (profile @ features.T)
        scores[0, items] = -np.inf
        return top_k(scores, check_k(k))[0]

    def save(self, directory: Path) -> None:
        assert self.segment_scores is not None and self.user_segment is not None
        self._save_params(directory)
        self.history.save(directory)
        np.savez(
            directory / "coldstart.npz",
            segment_scores=self.segment_scores,
            segment_support=self.segment_support,
            features=self.features,
        )
        np.save(directory / "user_segment.npy", self.user_segment)

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        model = cls(cls._load_params(directory))
        with np.load(directory / "coldstart.npz", allow_pickle=False) as arrays:
            model.segment_scores = arrays["segment_scores"]
            model.segment_support = arrays["segment_support"]
            model.features = arrays["features"]
        model.user_segment = load_array(directory, "user_segment")
        return model._restore(History.load(directory))
