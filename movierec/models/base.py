"""The one interface every recommender implements, and the data it learns from.

Items and users are addressed by their site ids at the interface (movie id strings, user
id integers) and by dense indices inside: `TrainingData` carries the mapping. A model
recommends for many users at once and for any user id — one it never saw gets its
fallback (popular items) — never recommends what the user already watched, and returns a
full list whenever enough candidates exist.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

import numpy as np
import scipy.sparse as sp

from movierec.ids import index_in_sorted
from movierec.models.scoring import block_rows, check_k, exclude, run_blocks, top_k

if TYPE_CHECKING:  # history.py builds on this module
    from movierec.models.history import History

LIST_LENGTH = 20
MODEL_FILE = "model.json"


@dataclass
class TrainingData:
    """What a model may learn from; everything here happened before `now_ns`."""

    # users x items confidence (implicit feedback, > 0 where the user interacted), CSR.
    matrix: sp.csr_matrix
    user_ids: np.ndarray  # int64, row -> site user id (sorted ascending)
    item_ids: np.ndarray  # str (object), column -> movie id
    now_ns: int  # end of the training window
    # One row per interaction, for models that care about time (popularity decay).
    event_user: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    event_item: np.ndarray = field(default_factory=lambda: np.empty(0, np.int32))
    event_time_ns: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    event_weight: np.ndarray = field(default_factory=lambda: np.empty(0, np.float32))
    # Side information; -1 where unknown. Users: age, gender (0 M, 1 F), occupation index.
    user_age: np.ndarray | None = None
    user_gender: np.ndarray | None = None
    user_occupation: np.ndarray | None = None
    # Items: genre bit mask (movierec.vocab.GENRES order), release year (0 unknown).
    item_genres: np.ndarray | None = None
    item_year: np.ndarray | None = None

    def __post_init__(self) -> None:
        n_users, n_items = self.matrix.shape
        if len(self.user_ids) != n_users or len(self.item_ids) != n_items:
            raise ValueError("matrix shape does not match the user and item id tables")
        if len(self.user_ids) > 1 and not (np.diff(self.user_ids) > 0).all():
            raise ValueError("user_ids must be sorted ascending and unique")

    @property
    def n_users(self) -> int:
        return self.matrix.shape[0]

    @property
    def n_items(self) -> int:
        return self.matrix.shape[1]

    def user_rows(self, user_ids: np.ndarray) -> np.ndarray:
        """Row of each site user id, -1 for users not in the data."""
        return index_in_sorted(self.user_ids, np.asarray(user_ids, dtype=np.int64))


@dataclass(frozen=True)
class ModelParams:
    """Base of each model's typed, validated hyperparameters."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Recommender(ABC):
    """A model: `recommend` is written once here, each model supplying how it scores.

    recommend maps user ids to training rows, gives users without training items (and
    users it never saw) the model's `_fallback_lists`, and scores everyone else in blocks
    of rows with `_score_block`, then excludes what they watched and keeps the top k."""

    name: ClassVar[str]
    Params: ClassVar[type[ModelParams]]
    # Bytes per (user, item) cell a scoring block holds at its peak: sets the block size.
    score_bytes: ClassVar[int] = 4

    def __init__(self, params: ModelParams | None = None, **overrides: Any) -> None:
        base = params or self.Params()
        if not isinstance(base, self.Params):
            raise TypeError(f"{self.name} takes {self.Params.__qualname__}, not {type(base)}")
        self.params = type(base)(**{**base.to_dict(), **overrides}) if overrides else base

    @abstractmethod
    def fit(self, data: TrainingData) -> Self: ...

    def recommend(self, user_ids: np.ndarray, k: int = LIST_LENGTH) -> np.ndarray:
        """Item indices (into item_ids) per user, best first: shape (len(user_ids), k),
        -1 where fewer candidates exist. Never an item the user interacted with in the
        training data; unknown users get the model's fallback."""
        k = check_k(k)
        history = self.history
        rows = history.rows(user_ids)
        # Without training items there is nothing to score from (a factor model would
        # see all scores tie): the fallback.
        scored = self._scores_rows(rows)
        if not scored.any():  # popularity, or only newcomers: no scatter into a copy
            return self._fallback_lists(rows, k)
        out = np.empty((len(rows), k), dtype=np.int64)
        out[~scored] = self._fallback_lists(rows[~scored], k)
        targets = rows[scored]
        lists = np.empty((len(targets), k), dtype=np.int64)

        def work(start: int, stop: int) -> None:
            block = targets[start:stop]
            scores = self._score_block(block)
            exclude(scores, *history.seen(block))
            lists[start:stop] = top_k(scores, k)

        rows_per_block = block_rows(history.n_items, self.score_bytes)
        run_blocks(len(targets), rows_per_block, self._scoring_threads(), work)
        out[scored] = lists
        return out

    def _scores_rows(self, rows: np.ndarray) -> np.ndarray:
        """Which rows `_score_block` ranks: those with training items."""
        return self.history.lengths(rows) > 0

    @abstractmethod
    def _fallback_lists(self, rows: np.ndarray, k: int) -> np.ndarray:
        """Lists (len(rows), k) for rows that are not scored (-1: a user the training data
        never saw), never an item of the row's training history."""

    def _score_block(self, rows: np.ndarray) -> np.ndarray:
        """Dense float32 scores (len(rows), n_items), higher better, for training rows
        with history; recommend excludes their training items. Called from several
        threads at once on different rows. Only models that score rows define it."""
        raise NotImplementedError(f"{self.name} scores no user on their own")

    def _scoring_threads(self) -> int:
        """Threads `_score_block` runs on."""
        return 1

    @property
    @abstractmethod
    def history(self) -> History:
        """The training interactions (raises RuntimeError before fit)."""

    @abstractmethod
    def recommend_history(
        self,
        user_id: int,
        items: np.ndarray,
        weights: np.ndarray | None = None,
        k: int = LIST_LENGTH,
    ) -> np.ndarray:
        """One list (k item indices, -1 padded) for a user whose whole history is `items`
        (with optional confidence weights), never any of them: how the service refreshes a
        list from events newer than the model, without retraining."""

    @property
    @abstractmethod
    def item_ids(self) -> np.ndarray: ...

    def recommend_ids(self, user_ids: np.ndarray, k: int = LIST_LENGTH) -> list[list[str]]:
        items = self.item_ids
        return [[items[i] for i in row if i >= 0] for row in self.recommend(user_ids, k)]

    @abstractmethod
    def save(self, directory: Path) -> None:
        """Write everything load() needs into directory (which exists and is empty)."""

    @classmethod
    @abstractmethod
    def load(cls, directory: Path) -> Self: ...

    def _save_params(self, directory: Path) -> None:
        """model.json: which model this is and its hyperparameters (all load_model needs)."""
        document = {"name": self.name, "params": self.params.to_dict()}
        # default=: numpy scalars (a grid search's np.int64) are written as plain numbers.
        text = json.dumps(document, indent=2, default=lambda value: value.item())
        (directory / MODEL_FILE).write_text(text)

    @classmethod
    def _load_params(cls, directory: Path) -> ModelParams:
        document = read_model_file(directory)
        if document["name"] != cls.name:
            raise ValueError(f"{directory} holds a {document['name']!r} model, not {cls.name!r}")
        return cls.Params(**document["params"])


def read_model_file(directory: Path) -> dict[str, Any]:
    document = json.loads((Path(directory) / MODEL_FILE).read_text())
    if not isinstance(document, dict) or not {"name", "params"} <= document.keys():
        raise ValueError(f"{directory / MODEL_FILE} is not a model description")
    return document


# Checks shared by the models' Params.__post_init__: bad hyperparameters fail loudly at
# construction, not as a NaN or a crash deep inside a long training run.
def require_int(name: str, value: object, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")


def require_float(name: str, value: object, low: float, *, strict: bool = False) -> None:
    """A real number >= low (> low if strict); NaN never passes, +inf does."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ValueError(f"{name} must be a number, got {value!r}")
    if math.isnan(value) or value < low or (strict and value == low):
        raise ValueError(f"{name} must be {'>' if strict else '>='} {low}, got {value!r}")
