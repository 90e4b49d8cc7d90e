"""Time-decayed popularity: the baseline, and the fallback of every other model.

An item's score is the sum over its events of weight x exp(-(now - t) / half_life x ln 2):
an event half a half-life old counts for 1/sqrt(2) of a fresh one, so the list follows
what is being watched now rather than what was watched once. Without events (a matrix
built from elsewhere) the score is the item's column sum in the training matrix.
"""

from __future__ import annotations

import math
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
)
from movierec.models.history import FittedHistory, History
from movierec.models.scoring import check_items, check_k, unseen_in_order

NS_PER_DAY = 86_400 * 10**9
# Events are decayed in chunks so that 20M events never need more than a few float64
# temporaries of this length at once.
EVENT_CHUNK = 1 << 20
# Users per call of unseen_in_order, which holds a few int64 arrays per seen item.
USER_CHUNK = 1 << 16


@dataclass(frozen=True)
class Params(ModelParams):
    half_life_days: float = 14.0  # +inf: no decay, plain (weighted) counts

    def __post_init__(self) -> None:
        require_float("half_life_days", self.half_life_days, 0.0, strict=True)


def item_popularity(
    data: TrainingData,
    half_life_days: float,
    groups: np.ndarray | None = None,
    n_groups: int = 1,
) -> np.ndarray:
    """Decayed popularity of every item, float64 (n_groups, n_items): within each group of
    users if `groups` gives a group per user row (-1: in none), else one global row."""
    n_items = data.n_items
    if groups is None:
        groups = np.zeros(data.n_users, dtype=np.int64)
    totals = np.zeros(n_groups * n_items, dtype=np.float64)
    if len(data.event_item) == 0:
        matrix = data.matrix.tocsr()
        counts = np.diff(matrix.indptr)
        owner = np.repeat(np.asarray(groups, dtype=np.int64), counts)
        keep = owner >= 0
        cells = owner[keep] * n_items + matrix.indices[keep]
        totals += np.bincount(cells, weights=matrix.data[keep], minlength=len(totals))
        return totals.reshape(n_groups, n_items)
    half_life_ns = half_life_days * NS_PER_DAY
    for start in range(0, len(data.event_item), EVENT_CHUNK):
        stop = start + EVENT_CHUNK
        owner = np.asarray(groups, dtype=np.int64)[data.event_user[start:stop]]
        keep = owner >= 0
        # Events stamped after now_ns (clock skew) count as fresh, never as more than 1.
        age_ns = np.maximum(data.now_ns - data.event_time_ns[start:stop][keep], 0)
        decay = np.exp(-(age_ns / half_life_ns) * math.log(2.0))
        weights = data.event_weight[start:stop][keep] * decay
        cells = owner[keep] * n_items + data.event_item[start:stop][keep]
        totals += np.bincount(cells, weights=weights, minlength=len(totals))
    return totals.reshape(n_groups, n_items)


class PopularityRecommender(FittedHistory, Recommender):
    name = "popularity"
    Params = Params
    params: Params

    def __init__(self, params: ModelParams | None = None, **overrides: object) -> None:
        super().__init__(params, **overrides)
        self.scores: np.ndarray | None = None
        self.order: np.ndarray | None = None
        self._history: History | None = None

    def fit(self, data: TrainingData) -> Self:
        scores = item_popularity(data, self.params.half_life_days)[0]
        return self.restore(scores, History.from_data(data))

    def restore(self, scores: np.ndarray, history: History) -> Self:
        """Become the fitted model with these item scores; other models embed a fallback
        this way, sharing their own history instead of keeping a second copy."""
        if len(scores) != history.n_items:
            raise ValueError("one score per item expected")
        self.scores = np.asarray(scores, dtype=np.float64)
        # Stable: equal scores keep the lower item index first, so the ranking is total.
        self.order = np.argsort(-self.scores, kind="stable")
        self._history = history
        return self

    def _scores_rows(self, rows: np.ndarray) -> np.ndarray:
        # One ranking for everyone, minus what each user watched: no row is scored alone.
        return np.zeros(len(rows), dtype=bool)

    def _fallback_lists(self, rows: np.ndarray, k: int) -> np.ndarray:
        return self.recommend_rows(rows, k)

    def recommend_rows(self, rows: np.ndarray, k: int) -> np.ndarray:
        """Lists for training rows (-1: a user without history)."""
        assert self.order is not None
        out = np.empty((len(rows), k), dtype=np.int64)
        for start in range(0, len(rows), USER_CHUNK):
            chunk = rows[start : start + USER_CHUNK]
            owner, items = self.history.seen(chunk)
            out[start : start + len(chunk)] = unseen_in_order(
                self.order, owner, items, len(chunk), k
            )
        return out

    def ranked_excluding(self, exclude: np.ndarray, k: int) -> np.ndarray:
        """The k best items not in `exclude`, -1 padded: one list for an ad-hoc history."""
        assert self.order is not None
        items = np.unique(check_items(exclude, len(self.order)))
        owner = np.zeros(len(items), dtype=np.int64)
        return unseen_in_order(self.order, owner, items, 1, check_k(k))[0]

    def recommend_history(
        self,
        user_id: int,
        items: np.ndarray,
        weights: np.ndarray | None = None,
        k: int = LIST_LENGTH,
    ) -> np.ndarray:
        return self.ranked_excluding(np.asarray(items, dtype=np.int64), k)

    def save(self, directory: Path) -> None:
        self._save_params(directory)
        self.history.save(directory)
        self.save_scores(directory, "popularity")

    def save_scores(self, directory: Path, name: str) -> None:
        assert self.scores is not None
        np.save(directory / f"{name}_scores.npy", self.scores)

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        model = cls(cls._load_params(directory))
        return model.restore(np.load(directory / "popularity_scores.npy"), History.load(directory))

    @classmethod
    def load_embedded(
        cls, directory: Path, name: str, half_life_days: float, history: History
    ) -> Self:
        """The fallback another model saved with save_scores(directory, name)."""
        model = cls(half_life_days=half_life_days)
        return model.restore(np.load(Path(directory) / f"{name}_scores.npy"), history)
