"""The catalogue as arrays: a real cache file written through catalog/cache.py, read back."""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.catalog.cache import FAILED, NOT_FOUND, OK, CacheEntry, CatalogCache
from movierec.catalog.reader import (
    CacheReadError,
    Catalogue,
    CatalogueUsers,
    MovieAdultFlags,
    MovieReleases,
    genre_mask,
    occupation_code,
)
from movierec.catalog.records import MovieRecord, UserRecord
from movierec.vocab import GENRES, OCCUPATIONS

WRITER = OCCUPATIONS.index("writer")
ARTIST = OCCUPATIONS.index("artist")
ACTION, DRAMA = (1 << [name for _, name in GENRES].index(g) for g in ("Action", "Drama"))


def movie(
    movie_id: str, genres: tuple[str, ...], year: int | None, runtime: int | None
) -> MovieRecord:
    return MovieRecord(movie_id, "T", year, genres, runtime, *[None] * 8)


def write(path: Path, entries: list[CacheEntry]) -> None:
    cache = CatalogCache(path)
    cache.write(entries)
    cache.close()


def test_users_and_movies_read_back_with_unknowns_coded(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    write(
        path,
        [
            CacheEntry("user", 30, OK, UserRecord(30, 41, "F", "artist")),
            CacheEntry("user", 7, OK, UserRecord(7, 25, "M", "Writer")),  # any case
            CacheEntry("user", 12, OK, UserRecord(12, None, None, None)),
            CacheEntry("user", 19, OK, UserRecord(19, 60, "X", "astronaut")),
            CacheEntry("user", 5, NOT_FOUND),
            CacheEntry("user", 6, FAILED, last_error="timeout"),
            CacheEntry("movie", "up+2009", OK, movie("up+2009", ("Drama", "Action"), 2009, 96)),
            CacheEntry("movie", "a+", OK, movie("a+", (), None, None)),
            CacheEntry("movie", "b+1990", OK, movie("b+1990", ("Drama", "Drama", "Noir"), 1990, 0)),
            CacheEntry("movie", "ghost+2001", NOT_FOUND),
        ],
    )
    catalogue = Catalogue.load(path)
    assert catalogue.user_ids.tolist() == [7, 12, 19, 30]  # only answered ids, sorted
    assert catalogue.user_age.tolist() == [25, -1, 60, 41]
    assert catalogue.user_gender.tolist() == [0, -1, -1, 1]
    assert catalogue.user_occupation.tolist() == [WRITER, -1, -1, ARTIST]
    assert catalogue.movie_ids.tolist() == ["a+", "b+1990", "up+2009"]
    assert catalogue.movie_genres.tolist() == [0, DRAMA, ACTION | DRAMA]
    assert catalogue.movie_year.tolist() == [0, 1990, 2009]
    assert catalogue.movie_runtime.tolist() == [0, 0, 96]
    users = CatalogueUsers.load(path)
    assert users.ids.tolist() == catalogue.user_ids.tolist()
    assert users.occupation.tolist() == catalogue.user_occupation.tolist()
    dtypes = [users.ids.dtype, users.age.dtype, users.gender.dtype, users.occupation.dtype]
    assert dtypes == [np.int64, np.int16, np.int8, np.int8]


def test_release_dates_read_back_with_unknowns_as_nat(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    dated = MovieRecord("b+2024", "T", 2024, (), None, *[None] * 7, "2024-12-25")
    write(
        path,
        [
            CacheEntry("movie", "b+2024", OK, dated),
            CacheEntry("movie", "a+1990", OK, movie("a+1990", (), 1990, None)),
            CacheEntry("movie", "c+", OK, movie("c+", (), None, None)),
            CacheEntry("movie", "ghost+2001", NOT_FOUND),
        ],
    )
    releases = MovieReleases.load(path)
    assert releases.ids.tolist() == ["a+1990", "b+2024", "c+"]
    assert releases.date.astype(str).tolist() == ["NaT", "2024-12-25", "NaT"]
    assert releases.year.tolist() == [1990, 2024, 0]
    assert MovieReleases.load(tmp_path / "none.sqlite").date.dtype == np.dtype("datetime64[D]")


def test_adult_flags_read_back_with_unknowns_coded(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    flags_given = {"x+": True, "a+": False, "m+": None}
    flagged = [MovieRecord(m, "T", None, (), *[None] * 7, a, None) for m, a in flags_given.items()]
    write(
        path,
        [CacheEntry("movie", r.movie_id, OK, r) for r in flagged]
        + [CacheEntry("movie", "ghost+2001", NOT_FOUND)],
    )
    flags = MovieAdultFlags.load(path)
    assert flags.ids.tolist() == ["a+", "m+", "x+"] and flags.adult.tolist() == [0, -1, 1]
    assert flags.adult_ids() == {"x+"}
    assert MovieAdultFlags.load(tmp_path / "none.sqlite").adult_ids() == frozenset()


def test_reading_beside_an_open_writer_sees_what_it_committed(tmp_path: Path) -> None:
    path = tmp_path / "catalog.sqlite"
    cache = CatalogCache(path)
    cache.add_pending("user", [1, 2])
    assert CatalogueUsers.load(path).ids.tolist() == []  # pending is not known yet
    cache.write([CacheEntry("user", 2, OK, UserRecord(2, 33, "M", "artist"))])
    assert CatalogueUsers.load(path).ids.tolist() == [2]
    cache.close()


def test_no_file_is_an_empty_catalogue(tmp_path: Path) -> None:
    catalogue = Catalogue.load(tmp_path / "none.sqlite")
    assert len(catalogue.user_ids) == len(catalogue.movie_ids) == 0
    assert catalogue.user_ids.dtype == np.int64 and catalogue.movie_genres.dtype == np.int64
    assert not (tmp_path / "none.sqlite").exists()  # reading creates nothing


def test_a_file_that_is_no_catalogue_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database, just some bytes" * 100)
    with pytest.raises(CacheReadError, match=r"junk\.sqlite: cannot read"):
        Catalogue.load(junk)
    other = tmp_path / "other.sqlite"
    with contextlib.closing(sqlite3.connect(other)) as conn:
        conn.execute("CREATE TABLE users (id INTEGER)")
    with pytest.raises(CacheReadError, match=r"schema 1 \(found 0\)"):
        CatalogueUsers.load(other)
    newer = tmp_path / "newer.sqlite"
    CatalogCache(newer).close()
    with contextlib.closing(sqlite3.connect(newer)) as conn:
        conn.execute("PRAGMA user_version = 2")
    with pytest.raises(CacheReadError, match="found 2"):
        Catalogue.load(newer)


def test_genre_mask_of_stored_text() -> None:
    assert genre_mask('["Action", "Drama"]') == ACTION | DRAMA
    assert genre_mask('["Action", "Action"]') == ACTION  # twice is still one genre
    assert genre_mask('["Action", 3, {"name": "Drama"}, "Noir"]') == ACTION
    assert genre_mask(None) == genre_mask("") == genre_mask("[") == genre_mask('"Action"') == 0


@given(st.sets(st.sampled_from([name for _, name in GENRES])))
def test_genre_mask_has_one_bit_per_known_genre(names: set[str]) -> None:
    mask = genre_mask(orjson.dumps(sorted(names)).decode())
    assert {name for i, (_, name) in enumerate(GENRES) if mask >> i & 1} == names


OCCUPATION_TEXT = st.one_of(
    st.sampled_from(OCCUPATIONS), st.sampled_from(OCCUPATIONS).map(str.upper), st.text(max_size=8)
)
USERS = st.dictionaries(
    st.integers(1, 10_000),
    st.tuples(
        st.one_of(st.none(), st.integers(0, 120)),
        st.sampled_from([None, "M", "F", "m", "?"]),
        st.one_of(st.none(), OCCUPATION_TEXT),
    ),
    max_size=20,
)


@settings(max_examples=40, deadline=None)
@given(USERS)
def test_every_answered_user_reads_back_in_id_order(users: dict[int, tuple]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "catalog.sqlite"
        entries = [CacheEntry("user", k, OK, UserRecord(k, *v)) for k, v in users.items()]
        write(path, entries)
        read = CatalogueUsers.load(path)
    assert read.ids.tolist() == sorted(users)
    for at, user_id in enumerate(read.ids.tolist()):
        age, gender, occupation = users[user_id]
        assert read.age[at] == (-1 if age is None else age)
        assert read.gender[at] == {"M": 0, "F": 1}.get(gender, -1)
        code = int(read.occupation[at])
        assert code == occupation_code(occupation)
        # A code names the occupation it came from, whatever its case; -1 only for others.
        known = {name.lower() for name in OCCUPATIONS}
        if code >= 0:
            assert OCCUPATIONS[code].lower() == (occupation or "").lower()
        else:
            assert (occupation or "").lower() not in known
