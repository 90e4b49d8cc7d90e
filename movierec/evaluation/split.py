"""Temporal split: learn from events before a cut time, test on each user's watches after
it. The test set holds only movies new to the user (a rewatch is not a discovery), and
nothing after the cut reaches training or its features."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from movierec.features.feedback import columns_of, encode_movies
from movierec.models.base import TrainingData
from movierec.store.events import EventStore

_TEST_SQL = """
SELECT user_id, CAST(movie_id AS VARCHAR) AS movie_id, count(DISTINCT minute) AS minutes
FROM watch
WHERE time >= make_timestamp_ns($cut) AND time < make_timestamp_ns($end)
GROUP BY ALL
"""


@dataclass
class Holdout:
    """Who watched what after the cut, aligned with a training set's items."""

    user_ids: np.ndarray  # int64, the test users (sorted)
    relevant: sp.csr_matrix  # test users x training items, 1 where watched after the cut
    unknown_items: int  # watches of movies the training set has no column for

    @property
    def n_users(self) -> int:
        return len(self.user_ids)


def cut_at_share(first_ns: int, last_ns: int, share: float) -> int:
    """The time at `share` of the way from first to last (e.g. 0.8: test on the last 20%)."""
    if not 0 < share < 1:
        raise ValueError("the training share must be within (0, 1)")
    return int(first_ns + (last_ns - first_ns) * share)


def holdout(
    store: EventStore, train: TrainingData, cut_ns: int, end_ns: int | None = None
) -> Holdout:
    """Watches in [cut, end) of movies each user had not interacted with before the cut."""
    params = {"cut": int(cut_ns), "end": int(end_ns if end_ns is not None else 2**62)}
    with contextlib.closing(store.connect()) as con:
        table = con.sql(_TEST_SQL, params=params).to_arrow_table()
    users = table.column("user_id").to_numpy().astype(np.int64)
    cols, known = columns_of(*encode_movies(table.column("movie_id")), train.item_ids)
    users, cols = users[known], cols[known]
    rows = train.user_rows(users)
    seen = np.zeros(len(users), dtype=bool)
    trained = rows >= 0
    if trained.any():
        seen[trained] = np.asarray(train.matrix[rows[trained], cols[trained]]).ravel() > 0
    users, cols = users[~seen], cols[~seen]
    user_ids, test_rows = np.unique(users, return_inverse=True)
    relevant = sp.csr_matrix(
        (np.ones(len(cols), np.float32), (test_rows, cols)),
        shape=(len(user_ids), train.n_items),
    )
    relevant.data[:] = 1.0  # one watch or many: relevant once
    return Holdout(user_ids, relevant, int((~known).sum()))
