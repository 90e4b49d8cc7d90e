"""Held-out relevance: what each user went on to like, which models are judged on.

Relevance comes from what the stream has: a movie is relevant to a user when they watched
it or rated it at least `positive_stars` (of 5; scaled on a 10-star site), and a lower
rating cancels a watch (they told us they did not like it). Only movies new to the user
count (a rewatch is not a discovery), and nothing held out reaches training.

Two ways to hold out, chosen by `movierec.evaluation.plan`:
    time      learn from events before a cut, test on what came after it
    per_user  test on each user's latest interactions, learn from the rest (when a time
              cut leaves too few users on either side: a small or bursty site)
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import scipy.sparse as sp
from pydantic import Field

from movierec.config import SettingsGroup
from movierec.features.feedback import columns_of, encode_movies
from movierec.models.base import TrainingData
from movierec.store.events import EventStore

# (user, movie) pairs with events in [cut, end): watched, and the latest rating there.
_AFTER_SQL = """
WITH w AS (
    SELECT user_id, CAST(movie_id AS VARCHAR) AS movie_id, count(DISTINCT minute) AS minutes
    FROM watch WHERE time >= make_timestamp_ns($cut) AND time < make_timestamp_ns($end)
    GROUP BY ALL
), r AS (
    SELECT user_id, CAST(movie_id AS VARCHAR) AS movie_id, arg_max(rating, time) AS rating
    FROM rate WHERE time >= make_timestamp_ns($cut) AND time < make_timestamp_ns($end)
    GROUP BY ALL
)
SELECT coalesce(w.user_id, r.user_id) AS user_id, coalesce(w.movie_id, r.movie_id) AS movie_id,
       coalesce(w.minutes, 0) AS minutes, r.rating AS rating
FROM w FULL OUTER JOIN r USING (user_id, movie_id)
"""


class SplitConfig(SettingsGroup):
    """How the training and evaluation hold data out: `split` settings."""

    positive_stars: float = Field(
        4.0,
        ge=0,
        le=5,
        description="stars (of 5) a held-out rating needs to count as liked; a 10-star "
        "site's ratings are halved first; a lower rating cancels a watch",
    )
    min_split_users: int = Field(
        10,
        ge=1,
        description="fewest test users the training data knows, per time cut; with "
        "fewer, each user's latest interactions are held out instead",
    )
    min_known_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="least share of a time cut's test users the training data must know; "
        "below it, each user's latest interactions are held out instead",
    )
    holdout_share: float = Field(
        0.2,
        gt=0,
        lt=1,
        description="share of each user's interactions (their latest, at least one) the "
        "per-user holdout keeps for testing",
    )


@dataclass
class Holdout:
    """Who liked what after the split, aligned with a training set's items."""

    user_ids: np.ndarray  # int64, the test users (sorted)
    relevant: sp.csr_matrix  # test users x training items, 1 where relevant
    unknown_items: int  # relevant pairs of movies the training set has no column for

    @property
    def n_users(self) -> int:
        return len(self.user_ids)


def cut_at_share(first_ns: int, last_ns: int, share: float) -> int:
    """The time at `share` of the way from first to last (e.g. 0.8: test on the last 20%)."""
    if not 0 < share < 1:
        raise ValueError("the training share must be within (0, 1)")
    return int(first_ns + (last_ns - first_ns) * share)


def liked(minutes: np.ndarray, rating: np.ndarray, positive: float) -> np.ndarray:
    """Relevance of (user, movie) pairs: watched or rated >= positive (stars on the site's
    scale, 0 where unrated), never when rated below it."""
    rated = rating > 0
    return np.where(rated, rating >= positive, minutes > 0)


def positive_rating(config: SplitConfig, rating_scale: int) -> float:
    return config.positive_stars * rating_scale / 5.0


def holdout(
    store: EventStore,
    train: TrainingData,
    cut_ns: int,
    end_ns: int | None = None,
    positive: float = 4.0,
) -> Holdout:
    """Relevant pairs in [cut, end) of movies each user had no interaction with before."""
    params = {"cut": int(cut_ns), "end": int(end_ns if end_ns is not None else 2**62)}
    with contextlib.closing(store.connect()) as con:
        table = con.sql(_AFTER_SQL, params=params).to_arrow_table()
    keep = liked(_column(table, "minutes"), _column(table, "rating"), positive)
    users = table.column("user_id").to_numpy().astype(np.int64)[keep]
    return relevant_pairs(users, table.column("movie_id").filter(pa.array(keep)), train)


def relevant_pairs(
    users: np.ndarray, movies: pa.Array | pa.ChunkedArray, train: TrainingData
) -> Holdout:
    """A Holdout of (user, movie) pairs, leaving out what the user has in training."""
    chunked = movies if isinstance(movies, pa.ChunkedArray) else pa.chunked_array([movies])
    cols, known = columns_of(*encode_movies(chunked), train.item_ids)
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
    relevant.data[:] = 1.0  # relevant once, however many events
    return Holdout(user_ids, relevant, int((~known).sum()))


def latest_per_user(pairs: pa.Table, share: float) -> np.ndarray:
    """Mask of each user's latest interactions: ceil(share x n) of their n pairs (by first
    event, ties by movie id), for users with at least two (one must stay to learn from)."""
    users = pairs.column("user_id").to_numpy().astype(np.int64)
    first = pairs.column("first_ns").to_numpy().astype(np.int64)
    movies = pairs.column("movie_id").to_numpy(zero_copy_only=False).astype(str)
    order = np.lexsort((movies, first, users))
    sorted_users = users[order]
    starts = np.flatnonzero(np.r_[True, sorted_users[1:] != sorted_users[:-1]])
    counts = np.diff(np.r_[starts, len(order)])
    rank = np.arange(len(order)) - np.repeat(starts, counts)  # 0 = the user's earliest
    held = np.minimum(np.ceil(share * counts).astype(np.int64), counts - 1)
    from_end = np.repeat(counts, counts) - rank  # 1 = the user's latest
    mask = np.zeros(len(order), dtype=bool)
    mask[order] = from_end <= np.repeat(held, counts)
    return mask


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).fill_null(0).to_numpy().astype(np.float64)
