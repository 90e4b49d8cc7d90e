"""Training data from the event store: one row per (user, movie) with events strictly
before a cut time, turned into implicit feedback with the catalogue's side information.
Everything is computed from events with time < cut: nothing from the future reaches a
model, its features or its popularity counts.
"""

from __future__ import annotations

import contextlib

import pyarrow as pa

from movierec.catalog.reader import Catalogue
from movierec.features.feedback import FeedbackConfig, build
from movierec.models.base import TrainingData
from movierec.store.events import EventStore

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
