"""Writing watch events straight into an event store, as ingestion would, for tests that
need a few exactly known rows rather than a simulation."""

from __future__ import annotations

import numpy as np

from movierec.ingest import tables
from movierec.store.events import EventStore

T0 = 1_735_689_600 * 10**9  # 2025-01-01T00:00
MIN = 60 * 10**9


def write_watch(store: EventStore, seq: int, rows: list[tuple[int, int, str, int]]) -> None:
    """Store (time ns, user, movie id, minute) watch rows as batch `seq` (not committed)."""
    movies = sorted({r[2] for r in rows})
    time_ns = np.array([r[0] for r in rows], dtype=np.int64)
    table = tables.watch_table(
        np.arange(len(rows)),
        time_ns,
        np.array([r[1] for r in rows], dtype=np.int32),
        np.array([movies.index(r[2]) for r in rows], dtype=np.int32),
        np.array([r[3] for r in rows], dtype=np.int32),
        movies,
    )
    for date, part in tables.by_date(table, time_ns):
        store.write_table(f"events/watch/date={date}", seq, part)


def write_rate(store: EventStore, seq: int, rows: list[tuple[int, int, str, int]]) -> None:
    """Store (time ns, user, movie id, stars) rate rows as batch `seq` (not committed)."""
    movies = sorted({r[2] for r in rows})
    time_ns = np.array([r[0] for r in rows], dtype=np.int64)
    table = tables.rate_table(
        np.arange(len(rows)),
        time_ns,
        np.array([r[1] for r in rows], dtype=np.int32),
        np.array([movies.index(r[2]) for r in rows], dtype=np.int32),
        np.array([r[3] for r in rows], dtype=np.int32),
        movies,
    )
    for date, part in tables.by_date(table, time_ns):
        store.write_table(f"events/rate/date={date}", seq, part)
