"""Arrow tables of one ingested batch: events by kind (split by date), quarantine, and the
raw lines of events stored before the catalogue vouched for their movie."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa

from movierec.logformat.reference import REASONS, Event
from movierec.store.schema import (
    MOVIE,
    PROVISIONAL_SCHEMA,
    QUARANTINE_SCHEMA,
    RATE_SCHEMA,
    RECOMMENDATION_SCHEMA,
    TIME,
    WATCH_SCHEMA,
)

DAY_NS = 86_400 * 1_000_000_000


def by_date(table: pa.Table, time_ns: np.ndarray) -> Iterator[tuple[str, pa.Table]]:
    """(YYYY-MM-DD, rows of that day) for every day the rows fall on."""
    days = time_ns // DAY_NS
    for day in np.unique(days):
        rows = np.flatnonzero(days == day)
        date = np.datetime64(int(day), "D").astype(str)
        yield date, table if len(rows) == len(table) else table.take(rows)


def movie_column(codes: np.ndarray, movies: list[str]) -> pa.DictionaryArray:
    dictionary = pa.array(movies, pa.string()) if movies else pa.array([], pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int32()), dictionary).cast(MOVIE)


def _movie_events(
    schema: pa.Schema,
    rows: np.ndarray,
    time_ns: np.ndarray,
    user: np.ndarray,
    movie: np.ndarray,
    value: np.ndarray,
    movies: list[str],
) -> pa.Table:
    """Watch or rate events: time, user, movie and the kind's own value (minute, stars)."""
    value_type = schema.field(3).type
    return pa.Table.from_arrays(
        [
            pa.array(time_ns[rows], TIME),
            pa.array(user[rows], pa.int32()),
            movie_column(movie[rows], movies),
            pa.array(value[rows].astype(value_type.to_pandas_dtype()), value_type),
        ],
        schema=schema,
    )


def watch_table(
    rows: np.ndarray,
    time_ns: np.ndarray,
    user: np.ndarray,
    movie: np.ndarray,
    value: np.ndarray,
    movies: list[str],
) -> pa.Table:
    return _movie_events(WATCH_SCHEMA, rows, time_ns, user, movie, value, movies)


def rate_table(
    rows: np.ndarray,
    time_ns: np.ndarray,
    user: np.ndarray,
    movie: np.ndarray,
    value: np.ndarray,
    movies: list[str],
) -> pa.Table:
    return _movie_events(RATE_SCHEMA, rows, time_ns, user, movie, value, movies)


def recommendation_table(rows: np.ndarray, events: dict[int, Event]) -> pa.Table:
    picked = [events[int(i)] for i in rows]
    return pa.Table.from_pylist(
        [
            {
                "time": e.time_ns,
                "user_id": e.user,
                "service": e.service,
                "status": e.value,
                "latency_ms": e.latency_ms,
                "result": e.result,
                "items": list(e.items),
            }
            for e in picked
        ],
        schema=RECOMMENDATION_SCHEMA,
    )


def quarantine_table(
    rows: np.ndarray,
    reasons: np.ndarray,
    values: Sequence[bytes],
    origins: Callable[[np.ndarray], pa.Array],
    seq: int,
) -> pa.Table:
    return pa.Table.from_arrays(
        [
            pa.array([values[i] for i in rows.tolist()], pa.binary()),
            pa.array([REASONS[r] for r in reasons[rows].tolist()], pa.string()),
            origins(rows),
            pa.array(np.full(len(rows), seq, dtype=np.int64)),
        ],
        schema=QUARANTINE_SCHEMA,
    )


def provisional_table(
    rows: np.ndarray,
    kinds: np.ndarray,
    movie: np.ndarray,
    movies: list[str],
    values: Sequence[bytes],
    origins: Callable[[np.ndarray], pa.Array],
    seq: int,
) -> pa.Table:
    kind_names = pa.array(["watch", "rate"], pa.string())
    return pa.Table.from_arrays(
        [
            pa.array([values[i] for i in rows.tolist()], pa.binary()),
            origins(rows),
            pa.array(np.full(len(rows), seq, dtype=np.int64)),
            pa.DictionaryArray.from_arrays(pa.array(kinds[rows].astype(np.int32)), kind_names),
            movie_column(movie[rows], movies),
        ],
        schema=PROVISIONAL_SCHEMA,
    )
