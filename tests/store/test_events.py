from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from movierec.ingest import tables
from movierec.store.events import Checkpoint, EventStore
from tests.support.store import MIN, T0, write_watch


def test_sessions_split_on_gaps_and_count_distinct_minutes(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    store.recover()
    rows = [(T0 + m * MIN, 1, "a+2000", m) for m in range(10)]  # minutes 0..9
    rows += [(T0 + 9 * MIN, 1, "a+2000", 9)]  # the same minute again (a replay)
    rows += [(T0 + (100 + m) * MIN, 1, "a+2000", 40 + m) for m in range(5)]  # 91 min later
    rows += [(T0 + m * MIN, 2, "a+2000", m) for m in range(3)]
    rows += [(T0 + m * MIN, 1, "b+1999", m) for m in range(2)]
    write_watch(store, 1, rows)
    store.commit(Checkpoint(seq=1))
    with store.connect() as con:
        got = con.execute(
            "SELECT user_id, movie_id, session, first_minute, last_minute, minutes_watched, "
            "epoch(start_time)::BIGINT, epoch(end_time)::BIGINT FROM sessions ORDER BY ALL"
        ).fetchall()
    start = T0 // 10**9
    assert got == [
        (1, "a+2000", 1, 0, 9, 10, start, start + 9 * 60),
        (1, "a+2000", 2, 40, 44, 5, start + 100 * 60, start + 104 * 60),
        (1, "b+1999", 1, 0, 1, 2, start, start + 60),
        (2, "a+2000", 1, 0, 2, 3, start, start + 120),
    ]


def test_only_committed_batches_are_visible_and_recovery_drops_the_rest(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    store.recover()
    write_watch(store, 1, [(T0, 1, "a+2000", 0)])
    store.commit(Checkpoint(seq=1, position=10))
    write_watch(store, 2, [(T0 + MIN, 1, "a+2000", 1), (T0 + 2 * MIN, 1, "a+2000", 2)])
    (store.state_dir / ".checkpoint.json.tmp").write_text("{")  # a crash mid-commit
    assert store.counts()["stored"]["watch"] == 1
    checkpoint = EventStore(tmp_path).recover()
    assert checkpoint.seq == 1 and checkpoint.position == 10
    assert sorted(p.name for p in tmp_path.rglob("*.parquet")) == ["0000000001.parquet"]
    assert not list(tmp_path.rglob("*.tmp"))


def test_a_movie_the_catalogue_rejects_leaves_the_events_for_the_quarantine(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    store.recover()
    write_watch(store, 1, [(T0, 1, "a+2000", 0), (T0, 2, "zz+2000", 0)])
    raw = [b"2025-01-01T00:00,2,GET /data/m/zz+2000/0.mpg"]
    table = tables.provisional_table(
        np.array([0]),
        np.array([0]),
        np.array([0]),
        ["zz+2000"],
        raw,
        lambda rows: pa.array([f"log@{i}" for i in rows]),
        1,
    )
    store.write_table("provisional", 1, table)
    store.commit(Checkpoint(seq=1))
    assert store.counts()["stored"]["watch"] == 2
    assert store.provisional_movies() == {"zz+2000": 1}
    assert store.set_unknown_movies({"zz+2000"}) and not store.set_unknown_movies({"zz+2000"})
    counts = store.counts()
    assert counts["stored"]["watch"] == 1 and counts["rejected"] == {"unknown_movie": 1}
    assert store.provisional_movies() == {}
    with store.connect() as con:
        assert con.sql("SELECT raw FROM quarantine").fetchall() == [(raw[0],)]


def test_an_empty_store_has_empty_views(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    counts = store.counts()
    assert counts["stored"] == {"watch": 0, "rate": 0, "recommendation": 0}
    with store.connect() as con:
        assert con.sql("SELECT count(*) FROM sessions").fetchall() == [(0,)]
        assert isinstance(con.sql("SELECT * FROM recommendation").to_arrow_table(), pa.Table)
