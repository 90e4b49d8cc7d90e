"""The catalogue as arrays: what the site's API said about users and movies, read from the
catalogue's cache (SQLite, written by ingestion) for training, evaluation and serving.

Codes are the same everywhere: gender 0 = M, 1 = F, -1 unknown; occupation = its index in
`movierec.vocab.OCCUPATIONS`, -1 unknown; genres as a bit mask over `movierec.vocab.GENRES`.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from movierec.vocab import GENRES, OCCUPATIONS

GENDER_CODE = {"M": 0, "F": 1}
OCCUPATION_CODE = {name.lower(): i for i, name in enumerate(OCCUPATIONS)}
_GENRE_BIT = {name: 1 << i for i, (_, name) in enumerate(GENRES)}


def occupation_code(name: str | None) -> int:
    return OCCUPATION_CODE.get((name or "").lower(), -1)


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
        return cls(
            user_ids=np.array([u[0] for u in users], dtype=np.int64),
            user_age=np.array([u[1] if u[1] is not None else -1 for u in users], np.int16),
            user_gender=np.array([GENDER_CODE.get(u[2], -1) for u in users], np.int8),
            user_occupation=np.array([occupation_code(u[3]) for u in users], np.int8),
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
