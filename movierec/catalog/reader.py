"""The catalogue as arrays: what the site's API said about users and movies, read from the
catalogue's cache (SQLite, written by ingestion) for training, evaluation and serving.
This is the one reader of the cache outside the catalogue client; the tables and their
columns belong to `movierec.catalog.cache`.

Only ids the API answered (status ok) are read, in id order. Codes are the same everywhere:
gender 0 = M, 1 = F, -1 unknown; occupation = its index in `movierec.vocab.OCCUPATIONS`,
-1 unknown; age -1 unknown; genres as a bit mask over `movierec.vocab.GENRES` (0: none
known, names outside the vocabulary ignored); year and runtime 0 unknown.
A missing file is an empty catalogue; a file that cannot be read raises `CacheReadError`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import orjson

from movierec.catalog.cache import CacheReadError, read_ok
from movierec.vocab import GENDERS, GENRES, OCCUPATIONS

__all__ = [
    "GENDER_CODE",
    "OCCUPATION_CODE",
    "CacheReadError",
    "Catalogue",
    "CatalogueUsers",
    "MovieAdultFlags",
    "MovieReleases",
    "genre_mask",
    "occupation_code",
]

GENDER_CODE = {name: i for i, name in enumerate(GENDERS)}
OCCUPATION_CODE = {name.lower(): i for i, name in enumerate(OCCUPATIONS)}
_GENRE_BIT = {name: 1 << i for i, (_, name) in enumerate(GENRES)}


def occupation_code(name: str | None) -> int:
    return OCCUPATION_CODE.get((name or "").lower(), -1)


def genre_mask(text: str | None) -> int:
    """The bit mask of genre names stored as a JSON list; 0 when none can be read."""
    if not text:
        return 0
    try:
        names = orjson.loads(text)
    except orjson.JSONDecodeError:
        return 0
    if not isinstance(names, list):
        return 0
    # A set: a name listed twice is still one bit (summed twice it would be another genre's).
    return sum(_GENRE_BIT.get(name, 0) for name in {n for n in names if isinstance(n, str)})


@dataclass(frozen=True)
class CatalogueUsers:
    """The users the API answered for, as arrays sorted by id."""

    ids: np.ndarray  # int64
    age: np.ndarray  # int16
    gender: np.ndarray  # int8
    occupation: np.ndarray  # int8

    @classmethod
    def load(cls, path: Path) -> CatalogueUsers:
        rows = read_ok(path, "user", ("age", "gender", "occupation"))
        return cls(
            ids=np.array([r[0] for r in rows], np.int64),
            age=np.array([-1 if r[1] is None else r[1] for r in rows], np.int16),
            gender=_coded([r[2] for r in rows], lambda name: GENDER_CODE.get(name, -1)),
            occupation=_coded([r[3] for r in rows], occupation_code),
        )


def _coded(values: list[str | None], code: Callable[[str | None], int]) -> np.ndarray:
    # A few distinct names among up to millions of users: code each name once.
    codes = {name: code(name) for name in set(values)}
    return np.array([codes[name] for name in values], np.int8)


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
        users = CatalogueUsers.load(path)
        movies = read_ok(path, "movie", ("genres", "year", "runtime"))
        return cls(
            user_ids=users.ids,
            user_age=users.age,
            user_gender=users.gender,
            user_occupation=users.occupation,
            movie_ids=np.array([m[0] for m in movies], dtype=object),
            movie_genres=np.array([genre_mask(m[1]) for m in movies], np.int64),
            movie_year=np.array([m[2] or 0 for m in movies], np.int16),
            movie_runtime=np.array([m[3] or 0 for m in movies], np.int32),
        )


@dataclass(frozen=True)
class MovieReleases:
    """When the movies the API answered for came out, as arrays sorted by id (the audit of
    new releases' exposure reads them; training and serving need only the year)."""

    ids: np.ndarray  # object (str)
    date: np.ndarray  # datetime64[D], NaT where the API gave no release date
    year: np.ndarray  # int16, 0 unknown

    @classmethod
    def load(cls, path: Path) -> MovieReleases:
        rows = read_ok(path, "movie", ("release_date", "year"))
        return cls(
            ids=np.array([r[0] for r in rows], dtype=object),
            date=np.array([r[1] or "NaT" for r in rows], dtype="datetime64[D]"),
            year=np.array([r[2] or 0 for r in rows], np.int16),
        )


@dataclass(frozen=True)
class MovieAdultFlags:
    """Which movies the API marks adult, as arrays sorted by id: the service keeps them
    from minors (movierec/serving/safety.py) and the safety audit checks that it did."""

    ids: np.ndarray  # object (str)
    adult: np.ndarray  # int8: 1 adult, 0 not, -1 the API did not say

    @classmethod
    def load(cls, path: Path) -> MovieAdultFlags:
        rows = read_ok(path, "movie", ("adult",))
        return cls(
            ids=np.array([r[0] for r in rows], dtype=object),
            adult=np.array([-1 if r[1] is None else int(bool(r[1])) for r in rows], np.int8),
        )

    def adult_ids(self) -> frozenset[str]:
        """The ids of the movies marked adult."""
        return frozenset(self.ids[self.adult == 1].tolist())
