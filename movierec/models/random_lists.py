"""Random lists: a deliberately bad model, the floor an experiment measures others against.

Each user's list is a seeded random order of the catalogue minus what they watched. The
order comes from a hash of (seed, user id, item index), not from a generator's stream, so
a user's list does not depend on which other users are asked with them, survives a save
and load, and costs no state per user. The catalogue is the items the training data saw
at least once; items it never saw come after them, in index order (which is also the
whole list when the data holds no interaction at all). Users the data does not know get
one list, the order of a user id no site uses (0).

It is never a default candidate of training (movierec/training/pipeline.py); it exists
so an experiment can pit a trained model against random lists.
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
    require_int,
)
from movierec.models.history import FittedHistory, History, load_array
from movierec.models.scoring import check_items, check_k, exclude, rank_prior, top_k

NOBODY = 0  # the user id whose order unknown users get: site ids start at 1
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


@dataclass(frozen=True)
class Params(ModelParams):
    seed: int = 0

    def __post_init__(self) -> None:
        require_int("seed", self.seed, 0)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: every input bit moves every output bit (uint64, wraps)."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class RandomListsRecommender(FittedHistory, Recommender):
    name = "random"
    Params = Params
    params: Params
    score_bytes = 24  # uint64 hashes and their float32 scores per cell

    def __init__(self, params: ModelParams | None = None, **overrides: object) -> None:
        super().__init__(params, **overrides)
        self._history: History | None = None
        self.seen_once: np.ndarray | None = None  # bool per item: in the catalogue drawn from

    def fit(self, data: TrainingData) -> Self:
        seen_once = np.zeros(data.n_items, dtype=bool)
        seen_once[data.matrix.indices] = True
        return self.restore(History.from_data(data), seen_once)

    def restore(self, history: History, seen_once: np.ndarray) -> Self:
        self._history = history
        self.seen_once = np.asarray(seen_once, dtype=bool)
        return self

    def scores(self, user_ids: np.ndarray) -> np.ndarray:
        """float32 (len(user_ids), n_items): a random order per user id, the catalogue the
        data saw above the rest (which keep index order, so ties never decide)."""
        assert self.seen_once is not None
        n_items = len(self.seen_once)
        with np.errstate(over="ignore"):
            users = np.asarray(user_ids, dtype=np.int64).astype(np.uint64)
            base = _mix(
                users * _GOLDEN + np.uint64(self.params.seed) * np.uint64(0xD1B54A32D192ED03)
            )
            cells = _mix(base[:, None] + np.arange(n_items, dtype=np.uint64)[None, :] * _GOLDEN)
        # 23 bits are exact in a float32 in [1, 2): the catalogue there, the rest below 0.
        drawn = (cells >> np.uint64(41)).astype(np.float32) / np.float32(1 << 23) + 1
        rest = rank_prior(np.arange(n_items))
        return np.where(self.seen_once[None, :], drawn, rest[None, :]).astype(np.float32)

    def _score_block(self, rows: np.ndarray) -> np.ndarray:
        return self.scores(self.history.user_ids[rows])

    def _fallback_lists(self, rows: np.ndarray, k: int) -> np.ndarray:
        # Users without training items: the same list for all, as the contract asks of a
        # fallback; rows with no history exclude nothing.
        one = top_k(self.scores(np.array([NOBODY])), k)
        return np.repeat(one, len(rows), axis=0)

    def recommend_history(
        self,
        user_id: int,
        items: np.ndarray,
        weights: np.ndarray | None = None,
        k: int = LIST_LENGTH,
    ) -> np.ndarray:
        k = check_k(k)
        seen = np.unique(check_items(np.asarray(items, dtype=np.int64), self.history.n_items))
        scores = self.scores(np.array([user_id]))
        exclude(scores, np.zeros(len(seen), dtype=np.int64), seen)
        return top_k(scores, k)[0]

    def save(self, directory: Path) -> None:
        assert self.seen_once is not None
        self._save_params(directory)
        self.history.save(directory)
        np.save(directory / "seen_once.npy", self.seen_once)

    @classmethod
    def load(cls, directory: Path) -> Self:
        directory = Path(directory)
        model = cls(cls._load_params(directory))
        return model.restore(History.load(directory), load_array(directory, "seen_once", False))
