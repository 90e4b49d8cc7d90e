"""The catalogue's SQLite cache: round trips of every field, WAL, readers beside a writer."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from movierec.catalog.cache import (
    FAILED,
    NOT_FOUND,
    OK,
    PENDING,
    CacheEntry,
    CacheWriter,
    CatalogCache,
)
from movierec.catalog.records import MovieRecord, UserRecord

FILM = MovieRecord(
    movie_id="walle+2008", title="WALL·E", year=2008, genres=("Animation", "Family"),
    runtime=98, language="en", popularity=12.5, vote_average=7.9, vote_count=9000,
    tmdb_id=10681, imdb_id="tt0910970", adult=False, release_date="2008-06-22",
)  # fmt: skip
SPARSE = MovieRecord("x+", None, None, (), None, None, None, None, None, None, None, None, None)


def test_round_trip_of_records_and_state(tmp_path: Path) -> None:
    cache = CatalogCache(tmp_path / "sub" / "catalog.sqlite")
    cache.add_pending("movie", ["walle+2008", "x+", "gone+1999", "later+2001"])
    cache.add_pending("user", [7, 8])
    cache.write(
        [
            CacheEntry("movie", "walle+2008", OK, FILM, raw=b'{"id":"walle+2008"}', attempts=2),
            CacheEntry("movie", "x+", OK, SPARSE, problems={"title": "missing"}),
            CacheEntry("movie", "gone+1999", NOT_FOUND, attempts=1),
            CacheEntry("movie", "later+2001", FAILED, rounds=2, next_retry=5.0, last_error="x"),
            CacheEntry("user", 7, OK, UserRecord(7, 31, "F", "writer")),
        ]
    )
    assert cache.read("movie", "walle+2008") == FILM
    assert cache.read("movie", "x+") == SPARSE
    assert cache.read("movie", "gone+1999") is None
    assert cache.read("user", 7) == UserRecord(7, 31, "F", "writer")
    assert cache.read("user", 8) is None
    details = cache.details("movie", "x+")
    assert details is not None and details["problems"] == {"title": "missing"}
    assert cache.details("movie", "walle+2008")["raw"] == {"id": "walle+2008"}  # type: ignore[index]
    cache.close()

    reopened = CatalogCache(tmp_path / "sub" / "catalog.sqlite")
    states = {row[0]: row[1:] for row in reopened.states("movie")}
    assert states == {
        "walle+2008": (OK, 2, 0, None),
        "x+": (OK, 0, 0, None),
        "gone+1999": (NOT_FOUND, 1, 0, None),
        "later+2001": (FAILED, 0, 2, 5.0),
    }
    assert {row[0]: row[1] for row in reopened.states("user")} == {7: OK, 8: PENDING}
    # A pending insert never overwrites what is known.
    reopened.add_pending("movie", ["walle+2008"])
    assert reopened.read("movie", "walle+2008") == FILM
    reopened.close()


def test_wal_mode_and_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    CatalogCache(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(RuntimeError, match="schema"):
        CatalogCache(path)


def test_readers_in_other_threads_while_one_writes(tmp_path: Path) -> None:
    cache = CatalogCache(tmp_path / "catalog.sqlite")
    stored: list[int] = []
    writer = CacheWriter(cache, lambda entries: stored.append(len(entries)), lambda: None)
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                for user_id in range(1, 200, 7):
                    record = cache.read("user", user_id)
                    assert record is None or record.user_id == user_id
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    for user_id in range(1, 2001):
        writer.put(CacheEntry("user", user_id, OK, UserRecord(user_id, 30, "M", "artist")))
    writer.close()
    done.set()
    for thread in readers:
        thread.join()
    assert errors == []
    assert sum(stored) == 2000
    assert cache.read("user", 2000) == UserRecord(2000, 30, "M", "artist")
    cache.close()


def test_a_write_that_keeps_failing_is_tried_three_times_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    cache = CatalogCache(path)
    other = sqlite3.connect(path)
    other.execute("DROP TABLE users")  # a real failure: the table is gone
    other.close()
    stored: list[int] = []
    errors: list[None] = []
    writer = CacheWriter(
        cache, lambda entries: stored.append(len(entries)), lambda: errors.append(None)
    )
    writer.put(CacheEntry("user", 1, OK, UserRecord(1, 30, "M", "artist")))
    assert writer.flush(10.0)
    assert len(errors) == 3 and stored == []  # three tries, then given up, never stored
    writer.put(CacheEntry("movie", "up+2009", NOT_FOUND))  # the writer lives on
    assert writer.flush(10.0)
    assert stored == [1] and len(errors) == 3
    writer.close()
    cache.close()
