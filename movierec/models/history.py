"""What each known user watched in the training data, kept by every fitted model.

A fitted model needs the training interactions after `fit` returns: to map site user ids
to rows, to exclude what a user already watched, and (item-kNN, cold start) to score from
the history itself. `History` holds them as the CSR arrays of the training matrix, shared
with it rather than copied, and saves them as plain .npy files so that a loaded model maps
them from disk instead of reading a million users' rows up front.
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

import numpy as np
import scipy.sparse as sp

from movierec.ids import index_in_sorted
from movierec.models.base import TrainingData


def save_ids(directory: Path, name: str, ids: np.ndarray) -> None:
    # Fixed-width unicode rather than object arrays: np.load then needs no pickle.
    np.save(directory / f"{name}.npy", np.asarray(ids, dtype=np.str_), allow_pickle=False)


def load_ids(directory: Path, name: str) -> np.ndarray:
    """Back to the object array of str that TrainingData carries."""
    return np.load(directory / f"{name}.npy", allow_pickle=False).astype(object)


def load_array(directory: Path, name: str, mmap: bool = True) -> np.ndarray:
    return np.load(directory / f"{name}.npy", mmap_mode="r" if mmap else None, allow_pickle=False)


class History:
    """Training interactions per user row, plus the site ids of rows and columns."""

    def __init__(
        self,
        user_ids: np.ndarray,
        item_ids: np.ndarray,
        indptr: np.ndarray,
        indices: np.ndarray,
        values: np.ndarray | None = None,
    ) -> None:
        if len(indptr) != len(user_ids) + 1 or len(indices) != indptr[-1]:
            raise ValueError("indptr/indices do not match the user table")
        self.user_ids = user_ids
        self.item_ids = item_ids
        self.indptr = indptr
        self.indices = indices
        self.values = values

    @classmethod
    def from_data(cls, data: TrainingData, keep_values: bool = False) -> Self:
        matrix = data.matrix
        if not isinstance(matrix, sp.csr_matrix | sp.csr_array):
            matrix = sp.csr_matrix(matrix)
        # Exclusion and the popularity fill assume one entry per (user, item): canonicalise,
        # copying only when the caller's matrix is not canonical already.
        if not matrix.has_canonical_format:
            matrix = matrix.copy()
            matrix.sum_duplicates()
        values = None
        if keep_values:
            values = matrix.data
            if values.dtype != np.float32:
                values = values.astype(np.float32)
        return cls(
            np.asarray(data.user_ids, dtype=np.int64),
            np.asarray(data.item_ids, dtype=object),
            matrix.indptr,
            matrix.indices,
            values,
        )

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def rows(self, user_ids: np.ndarray) -> np.ndarray:
        """Row of each site user id, -1 for users not in the training data."""
        return index_in_sorted(self.user_ids, np.asarray(user_ids, dtype=np.int64).reshape(-1))

    def lengths(self, rows: np.ndarray) -> np.ndarray:
        """Number of training items of each row; 0 for -1 (unknown users)."""
        rows = np.asarray(rows, dtype=np.int64)
        counts = np.zeros(len(rows), dtype=np.int64)
        known = rows >= 0
        counts[known] = self.indptr[rows[known] + 1] - self.indptr[rows[known]]
        return counts

    def positions(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in `rows`, position in indices/values) of every entry of those rows,
        row by row in order; -1 rows contribute nothing."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths(rows)
        starts = np.zeros(len(rows), dtype=np.int64)
        starts[rows >= 0] = self.indptr[rows[rows >= 0]]
        total = int(lengths.sum())
        ends = np.cumsum(lengths)
        where = np.repeat(starts - (ends - lengths), lengths) + np.arange(total)
        return np.repeat(np.arange(len(rows)), lengths), where

    def seen(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(position in `rows`, item index) of every training interaction of those rows."""
        owner, where = self.positions(rows)
        return owner, np.asarray(self.indices[where], dtype=np.int64)

    def submatrix(self, rows: np.ndarray) -> sp.csr_matrix:
        """The rows' interactions as a float32 CSR matrix (values required)."""
        if self.values is None:
            raise RuntimeError("this history was kept without values")
        rows = np.asarray(rows, dtype=np.int64)
        _, where = self.positions(rows)
        indptr = np.concatenate([[0], np.cumsum(self.lengths(rows))])
        return sp.csr_matrix(
            (self.values[where], self.indices[where], indptr), shape=(len(rows), self.n_items)
        )

    def save(self, directory: Path) -> None:
        save_ids(directory, "item_ids", self.item_ids)
        np.save(directory / "user_ids.npy", self.user_ids)
        np.save(directory / "history_indptr.npy", self.indptr)
        np.save(directory / "history_indices.npy", self.indices)
        if self.values is not None:
            np.save(directory / "history_values.npy", self.values)

    @classmethod
    def load(cls, directory: Path) -> Self:
        values = None
        if (directory / "history_values.npy").exists():
            values = load_array(directory, "history_values")
        return cls(
            load_array(directory, "user_ids"),
            load_ids(directory, "item_ids"),
            load_array(directory, "history_indptr"),
            load_array(directory, "history_indices"),
            values,
        )


class FittedHistory:
    """The `history` and `item_ids` every fitted model has (mixed into each model)."""

    name: str
    _history: History | None

    @property
    def history(self) -> History:
        if self._history is None:
            raise RuntimeError(f"{self.name} model is not fitted")
        return self._history

    @property
    def item_ids(self) -> np.ndarray:
        return self.history.item_ids
