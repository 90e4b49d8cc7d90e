"""Training data from the event store: implicit feedback per (user, movie), strictly from
events before a cut time, with the catalogue's side information.

Confidence of a (user, movie) pair, before recency:
    share of the movie watched (distinct minutes / runtime, at least 0.1 for any watch),
    + 0.5 for a 5-star rating, + 0.25 for 4 stars, x 0.3 for 1-2 stars (watched, disliked),
    or rating / scale alone when the user rated without watching (a ratings-only stream).
Recency multiplies it by 2^(-age / half-life): what users did lately says more about what
they want next. Everything is computed from events with time < cut: nothing from the
future reaches a model, its features or its popularity counts.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp

from movierec.models.base import TrainingData
from movierec.store.events import EventStore
from movierec.vocab import GENRES, OCCUPATIONS

DAY_NS = 86_400 * 1_000_000_000
DEFAULT_RUNTIME = 100  # minutes, for movies the catalogue has no runtime for
_GENRE_BIT = {name: 1 << i for i, (_, name) in enumerate(GENRES)}
_OCCUPATION = {name.lower(): i for i, name in enumerate(OCCUPATIONS)}


@dataclass(frozen=True, slots=True)
class FeedbackConfig:
    recency_half_life_days: float = 60.0
    min_watch_share: float = 0.1
    rating_scale: int = 5

    def __post_init__(self) -> None:
        if self.recency_half_life_days <= 0:
            raise ValueError("recency_half_life_days must be positive")
        if not 0 < self.min_watch_share <= 1:
            raise ValueError("min_watch_share must be within (0, 1]")


_PAIRS_SQL = """
WITH w AS (
    SELECT user_id, CAST(movie_id AS VARCHAR) AS movie_id,
           count(DISTINCT minute) AS minutes, max(minute) AS last_minute,
           min(time) AS first_time, max(time) AS last_time
    FROM watch WHERE time < make_timestamp_ns($cut) GROUP BY ALL
), r AS (
    SELECT user_id, CAST(movie_id AS VARCHAR) AS movie_id,
           arg_max(rating, time) AS rating, max(time) AS rated_time
    FROM rate WHERE time < make_timestamp_ns($cut) GROUP BY ALL
)
SELECT coalesce(w.user_id, r.user_id) AS user_id,
       coalesce(w.movie_id, r.movie_id) AS movie_id,
       coalesce(w.minutes, 0) AS minutes, coalesce(w.last_minute, -1) AS last_minute,
       r.rating AS rating,
       epoch_ns(coalesce(least(w.first_time, r.rated_time), w.first_time, r.rated_time))
           AS first_ns,
       epoch_ns(coalesce(greatest(w.last_time, r.rated_time), w.last_time, r.rated_time))
           AS last_ns
FROM w FULL OUTER JOIN r USING (user_id, movie_id)
ORDER BY user_id, movie_id
"""


def time_range(store: EventStore) -> tuple[int, int] | None:
    """(first, last) event time in ns over watch and rate events, None when empty."""
    with contextlib.closing(store.connect()) as con:
        row = con.sql(
            "SELECT epoch_ns(min(t)), epoch_ns(max(t)) FROM "
            "(SELECT min(time) AS t FROM watch UNION ALL SELECT max(time) FROM watch "
            "UNION ALL SELECT min(time) FROM rate UNION ALL SELECT max(time) FROM rate)"
        ).fetchall()[0]
    return None if row[0] is None else (int(row[0]), int(row[1]))


def interactions(store: EventStore, cut_ns: int, start_ns: int | None = None) -> pa.Table:
    """One row per (user, movie) with events in [start, cut)."""
    sql = _PAIRS_SQL
    if start_ns is not None:
        sql = sql.replace(
            "WHERE time < make_timestamp_ns($cut)",
            "WHERE time < make_timestamp_ns($cut) AND time >= make_timestamp_ns($start)",
        )
    params: dict[str, object] = {"cut": int(cut_ns)}
    if start_ns is not None:
        params["start"] = int(start_ns)
    with contextlib.closing(store.connect()) as con:
        return con.sql(sql, params=params).to_arrow_table()


@dataclass
class Catalogue:
    """What the site's API said about users and movies (the store's cache)."""

    user_ids: np.ndarray
    user_age: np.ndarray
    user_gender: np.ndarray
    user_occupation: np.ndarray
    movie_ids: np.ndarray  # object
    movie_genres: np.ndarray
    movie_year: np.ndarray
    movie_runtime: np.ndarray

    @classmethod
    def load(cls, path: Path) -> Catalogue:
        users: list[tuple] = []
        movies: list[tuple] = []
        if path.exists():
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as con:
                users = con.execute(
                    "SELECT id, age, gender, occupation FROM users WHERE status = 'ok'"
                ).fetchall()
                movies = con.execute(
                    "SELECT id, genres, year, runtime FROM movies WHERE status = 'ok'"
                ).fetchall()
        users.sort()
        genders = {"M": 0, "F": 1}
        return cls(
            user_ids=np.array([u[0] for u in users], dtype=np.int64),
            user_age=np.array([u[1] if u[1] is not None else -1 for u in users], np.int16),
            user_gender=np.array([genders.get(u[2], -1) for u in users], np.int8),
            user_occupation=np.array(
                [_OCCUPATION.get((u[3] or "").lower(), -1) for u in users], np.int8
            ),
            movie_ids=np.array([m[0] for m in movies], dtype=object),
            movie_genres=np.array([_genre_mask(m[1]) for m in movies], np.int64),
            movie_year=np.array([m[2] or 0 for m in movies], np.int16),
            movie_runtime=np.array([m[3] or 0 for m in movies], np.int32),
        )


def _genre_mask(text: str | None) -> int:
    if not text:
        return 0
    try:
        names = json.loads(text)
    except ValueError:
        return 0
    return sum(_GENRE_BIT.get(name, 0) for name in names if isinstance(name, str))


def build(
    pairs: pa.Table, catalogue: Catalogue, cut_ns: int, config: FeedbackConfig | None = None
) -> TrainingData:
    """TrainingData from (user, movie) pairs; the item universe also holds every movie the
    catalogue knows, so new movies without interactions can still be recommended."""
    cfg = config or FeedbackConfig()
    users = pairs.column("user_id").to_numpy().astype(np.int64)
    minutes = pairs.column("minutes").to_numpy().astype(np.float64)
    last_minute = pairs.column("last_minute").to_numpy().astype(np.float64)
    rating = pairs.column("rating").fill_null(0).to_numpy().astype(np.float64)
    last_ns = pairs.column("last_ns").to_numpy().astype(np.int64)
    distinct, codes = encode_movies(pairs.column("movie_id"))
    item_ids = np.unique(np.concatenate([distinct, catalogue.movie_ids]).astype(str)).astype(object)
    cols, _ = columns_of(distinct, codes, item_ids)
    user_ids, rows = np.unique(users, return_inverse=True)
    runtime = _runtimes(item_ids, cols, last_minute, catalogue)
    weight = _confidence(minutes, runtime[cols], rating, cfg)
    age_days = np.maximum(cut_ns - last_ns, 0) / DAY_NS
    weight *= np.exp2(-age_days / cfg.recency_half_life_days)
    matrix = sp.csr_matrix(
        (weight.astype(np.float32), (rows, cols)), shape=(len(user_ids), len(item_ids))
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    side = _side_information(user_ids, item_ids, catalogue)
    return TrainingData(
        matrix=matrix,
        user_ids=user_ids,
        item_ids=item_ids,
        now_ns=cut_ns,
        event_user=rows.astype(np.int32),
        event_item=cols,
        event_time_ns=last_ns,
        event_weight=weight.astype(np.float32),
        **side,
    )


def encode_movies(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct movie ids, the code of each row): millions of rows, thousands of ids."""
    encoded = pc.dictionary_encode(column.cast(pa.string())).combine_chunks()
    distinct = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    return distinct, encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def columns_of(
    distinct: np.ndarray, codes: np.ndarray, item_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(column of each row in item_ids, whether item_ids has it) for encoded movie ids."""
    keys = item_ids.astype(str)
    if len(keys) == 0 or len(distinct) == 0:
        return np.zeros(len(codes), np.int32), np.zeros(len(codes), bool)
    at = np.minimum(np.searchsorted(keys, distinct.astype(str)), len(keys) - 1)
    found = keys[at] == distinct.astype(str)
    return at[codes].astype(np.int32), found[codes]


def _runtimes(
    item_ids: np.ndarray, cols: np.ndarray, last_minute: np.ndarray, catalogue: Catalogue
) -> np.ndarray:
    """Runtime per item: the catalogue's, else one past the last minute anyone watched,
    else a default."""
    runtime = np.zeros(len(item_ids), dtype=np.float64)
    known = np.searchsorted(item_ids.astype(str), catalogue.movie_ids.astype(str))
    runtime[known] = catalogue.movie_runtime
    seen = np.full(len(item_ids), -1.0)
    np.maximum.at(seen, cols, last_minute)
    guess = np.where(seen >= 0, seen + 1, DEFAULT_RUNTIME)
    return np.maximum(np.where(runtime > 0, runtime, guess), 1.0)


def _confidence(
    minutes: np.ndarray, runtime: np.ndarray, rating: np.ndarray, cfg: FeedbackConfig
) -> np.ndarray:
    watched = minutes > 0
    share = np.where(watched, np.clip(minutes / runtime, cfg.min_watch_share, 1.0), 0.0)
    stars = rating * (5.0 / cfg.rating_scale)  # on a 5-star scale
    bonus = np.select([stars >= 4.5, stars >= 3.5], [0.5, 0.25], 0.0)
    disliked = (stars > 0) & (stars < 2.5)
    weight = np.where(disliked, share * 0.3, share + np.where(watched, bonus, 0.0))
    rated_only = ~watched & (stars > 0)
    return np.where(rated_only, stars / 5.0, weight)


def _side_information(
    user_ids: np.ndarray, item_ids: np.ndarray, catalogue: Catalogue
) -> dict[str, np.ndarray]:
    def lookup(ids: np.ndarray, keys: np.ndarray, values: np.ndarray, fill: int) -> np.ndarray:
        out = np.full(len(ids), fill, dtype=values.dtype)
        if len(keys) == 0:
            return out
        at = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
        hit = keys[at] == ids
        out[hit] = values[at[hit]]
        return out

    order = np.argsort(catalogue.movie_ids.astype(str))
    movie_keys = catalogue.movie_ids.astype(str)[order]
    items = item_ids.astype(str)
    return {
        "user_age": lookup(user_ids, catalogue.user_ids, catalogue.user_age, -1),
        "user_gender": lookup(user_ids, catalogue.user_ids, catalogue.user_gender, -1),
        "user_occupation": lookup(user_ids, catalogue.user_ids, catalogue.user_occupation, -1),
        "item_genres": lookup(items, movie_keys, catalogue.movie_genres[order], 0),
        "item_year": lookup(items, movie_keys, catalogue.movie_year[order], 0),
    }


def training_data(
    store: EventStore,
    cut_ns: int,
    config: FeedbackConfig | None = None,
    start_ns: int | None = None,
) -> TrainingData:
    """Everything a model may learn from: events in [start, cut) and the catalogue."""
    return build(
        interactions(store, cut_ns, start_ns), Catalogue.load(store.catalog_path), cut_ns, config
    )
