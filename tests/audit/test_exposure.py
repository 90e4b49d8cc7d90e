"""Exposure of the long tail and of new releases: the head/tail cut and release classes by
hand, the vectorised figures against the slow reference, a hand-made log end to end, and
the simulated site's own log."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections import Counter
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.audit import reference
from movierec.audit.exposure import (
    MIN_LISTS,
    exposure,
    exposure_figures,
    head_mask,
    release_classes,
)
from movierec.catalog.cache import OK, CacheEntry, CatalogCache
from movierec.catalog.reader import MovieReleases
from movierec.catalog.records import MovieRecord
from movierec.store.events import EventStore
from movierec.times import DAY_NS
from tests.support.online import SEC, OnlineWorld, Request
from tests.support.simulated_run import SiteRun
from tests.support.store import T0

END = np.datetime64("2025-01-18")


def head_of(sessions: dict[str, int]) -> set[str]:
    ids = np.array(list(sessions), dtype=object)
    return set(ids[head_mask(np.array(list(sessions.values())), ids)].tolist())


def test_the_head_is_the_most_watched_down_to_the_one_reaching_80_percent() -> None:
    assert head_of({"a": 5, "b": 3, "c": 1, "d": 1, "e": 0}) == {"a", "b"}  # 8 of 10
    assert head_of({"c": 2, "a": 2, "e": 2, "b": 2, "d": 2}) == {"a", "b", "c", "d"}  # ties: id
    assert head_of({"z": 4, "a": 3, "b": 3}) == {"z", "a", "b"}  # 7 of 10 is not yet 80%
    assert head_of({"a": 0, "b": 0}) == set()  # nobody watched: no head
    assert head_of({}) == set()


def releases(entries: dict[str, tuple[str | None, int | None]]) -> MovieReleases:
    ids = sorted(entries)
    return MovieReleases(
        ids=np.array(ids, dtype=object),
        date=np.array([entries[m][0] or "NaT" for m in ids], dtype="datetime64[D]"),
        year=np.array([entries[m][1] or 0 for m in ids], np.int16),
    )


def test_release_classes_by_date_then_by_year_else_unknown() -> None:
    catalogue = releases(
        {
            "edge": ("2024-10-20", 2024),  # exactly 90 days before the end: old
            "fresh": ("2024-10-21", 2024),
            "premiere": ("2025-03-01", 2025),  # after the log's end: new, not old
            "classic": ("1999-01-01", 1999),
            "y2023": (None, 2023),  # the whole year ended before the 90 days
            "y2025": (None, 2025),  # the whole year began within them
            "y2024": (None, 2024),  # straddles the line: cannot say
            "blank": (None, None),
        }
    )
    movies = ["edge", "fresh", "premiere", "classic", "y2023", "y2025", "y2024", "blank", "gone"]
    assert release_classes(np.array(movies, dtype=object), catalogue, END).tolist() == [
        "old", "new", "new", "old", "old", "new", "unknown", "unknown", "unknown",
    ]  # fmt: skip


dates_st = st.one_of(st.none(), st.dates(date(2020, 1, 1), date(2026, 12, 31)))


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(
        st.text("abc", min_size=1, max_size=3),
        st.tuples(
            st.integers(0, 40), st.integers(0, 40), dates_st, st.sampled_from([0, 2023, 2024, 2025])
        ),
        max_size=15,
    ),
    st.floats(0.05, 1.0),
    st.integers(1, 400),
)
def test_exposure_shares_agree_with_the_reference(
    movies: dict[str, tuple[int, int, date | None, int]], head_share: float, new_days: int
) -> None:
    ids = np.array(sorted(movies), dtype=object)
    slots = np.array([movies[m][0] for m in ids], dtype=np.int64)
    sessions = np.array([movies[m][1] for m in ids], dtype=np.int64)
    catalogue = releases(
        {m: (movies[m][2] and movies[m][2].isoformat(), movies[m][3]) for m in ids}
    )
    classes = release_classes(ids, catalogue, END, new_days)
    end = date(2025, 1, 18)
    slow_classes = {
        m: reference.release_class(movies[m][2], movies[m][3], end, new_days) for m in ids
    }
    assert classes.tolist() == [slow_classes[m] for m in ids]
    fast = exposure_figures(ids, slots, sessions, classes, lists=1000, head_share=head_share)
    slow = reference.exposure_shares(
        dict(zip(ids, slots.tolist(), strict=True)),
        dict(zip(ids, sessions.tolist(), strict=True)),
        slow_classes,
        head_share,
    )
    pairs = {
        "long_tail_recommended": fast["long_tail"]["recommended_share"],
        "long_tail_watched": fast["long_tail"]["watched_share"],
        "new_release_recommended": fast["new_release"]["recommended_share"],
        "new_release_watched": fast["new_release"]["watched_share"],
    }
    for name, got in pairs.items():
        assert got == (None if slow[name] is None else pytest.approx(slow[name], abs=1e-6)), name
    top = reference.head(dict(zip(ids, sessions.tolist(), strict=True)), head_share)
    assert fast["head_movies"] == len(top)


def write_movies(root: Path, dated: dict[str, str]) -> None:
    cache = CatalogCache(root / "catalog.sqlite")
    cache.write(
        [
            CacheEntry("movie", m, OK, MovieRecord(m, "T", int(d[:4]), (), *[None] * 8, d))
            for m, d in dated.items()
        ]
    )
    cache.close()


def test_a_hand_made_log_end_to_end(tmp_path: Path) -> None:
    world = OnlineWorld(tmp_path)
    # Day one: 200 sessions, 160 of "hit" (the head), 30 of "fresh" (out ten days before
    # the log's end), 10 of "old"; day two likewise but 20 and 20. Then 100 lists a day,
    # which on day one show the tail half the time and on day two never.
    write_movies(world.store.root, {"hit+2000": "2000-05-01", "old+1990": "1990-05-01",
                                    "fresh+2025": "2025-01-01"})  # fmt: skip
    day = [T0 + 10 * DAY_NS, T0 + 11 * DAY_NS]
    shown = (["hit+2000", "fresh+2025"], ["hit+2000"])
    tail = ((30, 10), (20, 20))
    for d, items, (fresh, old) in zip(day, shown, tail, strict=True):
        watched = ["hit+2000"] * 160 + ["fresh+2025"] * fresh + ["old+1990"] * old
        world.batch(
            requests=[Request(d + 3600 * SEC + i * SEC, 1000 + i, items=tuple(items))
                      for i in range(MIN_LISTS)],
            watches=[(d + i * SEC, i, movie, 0) for i, movie in enumerate(watched)],
        )  # fmt: skip
    first = exposure(world.store.root, since_ns=day[0], until_ns=day[1])
    assert (first["lists"], first["slots"], first["sessions"]) == (100, 200, 200)
    assert first["head_movies"] == 1 and first["long_tail"]["movies"] == 2
    assert first["long_tail"]["recommended_share"] == 0.5
    assert first["long_tail"]["watched_share"] == 0.2 and first["long_tail"]["ratio"] == 2.5
    assert first["new_release"]["recommended_share"] == 0.5
    assert first["new_release"]["watched_share"] == 0.15
    assert first["new_release"]["ratio"] == pytest.approx(0.5 / 0.15, abs=1e-6)
    assert first["breaches"] == [] and first["passed"] and first["warnings"] == []
    second = exposure(world.store.root, since_ns=day[1])
    assert second["long_tail"]["ratio"] == 0.0 and second["long_tail"]["breach"]
    assert second["new_release"]["ratio"] == 0.0
    # 20 sessions of new releases are too few to judge them: said, not judged.
    assert not second["new_release"]["judged"] and not second["new_release"]["breach"]
    assert [b["figure"] for b in second["breaches"]] == ["long_tail"] and not second["passed"]
    assert any("new_release: not judged" in w for w in second["warnings"])
    both = exposure(world.store.root)
    assert both["window"]["data_end"] == "2025-01-12T01:01:39+00:00"
    assert json.loads(json.dumps(both, allow_nan=False)) == both


def test_no_answers_or_no_catalogue_are_said(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no committed events"):
        exposure(tmp_path / "nothing")
    world = OnlineWorld(tmp_path)
    world.batch(watches=[(T0, 1, "a+2000", 0)])
    report = exposure(world.store.root)
    assert report["lists"] == 0 and report["long_tail"]["ratio"] is None
    assert report["passed"] is None  # nothing judged: neither passed nor failed
    assert any("no status-200 recommendations" in w for w in report["warnings"])
    assert any("every release unknown" in w for w in report["warnings"])


def test_the_simulated_sites_log_agrees_with_the_reference(simulated_run: SiteRun) -> None:
    report = exposure(simulated_run.store)
    with contextlib.closing(EventStore(simulated_run.store).connect()) as con:
        lists = con.sql("SELECT items FROM recommendation WHERE status = 200").fetchall()
        watched = con.sql("SELECT CAST(movie_id AS VARCHAR) FROM sessions").fetchall()
        end = (
            con.sql(
                "SELECT max(t) FROM (SELECT max(time) AS t FROM watch UNION ALL "
                "SELECT max(time) FROM rate UNION ALL SELECT max(time) FROM recommendation)"
            )
            .fetchall()[0][0]
            .date()
        )
    slots = Counter(item for (items,) in lists for item in items)
    sessions = Counter(movie for (movie,) in watched)
    with contextlib.closing(sqlite3.connect(simulated_run.store / "catalog.sqlite")) as db:
        rows = db.execute("SELECT id, release_date, year FROM movies WHERE status = 'ok'")
        known = {m: (d and date.fromisoformat(d), y or 0) for m, d, y in rows}
    classes = {
        m: reference.release_class(*known[m], end, 90) if m in known else "unknown"
        for m in set(slots) | set(sessions)
    }
    slow = reference.exposure_shares(slots, sessions, classes, 0.8)
    assert report["lists"] == len(lists) > 500 and report["slots"] == sum(slots.values())
    assert report["long_tail"]["recommended_share"] == pytest.approx(
        slow["long_tail_recommended"], abs=1e-6
    )
    assert report["long_tail"]["watched_share"] == pytest.approx(
        slow["long_tail_watched"], abs=1e-6
    )
    assert report["new_release"]["recommended_share"] == pytest.approx(
        slow["new_release_recommended"], abs=1e-6
    )
    assert report["new_release"]["watched_share"] == pytest.approx(
        slow["new_release_watched"], abs=1e-6
    )
