"""Typed records from the site's user and movie API answers (SPEC section 2).

The API sends numbers as strings, the string "null", JSON null, missing fields and the odd
wrong type. Parsing never raises: every field that cannot be read becomes None and is
listed in `Parsed.problems` (field -> kind), so the caller can count the dirt and decide
whether asking again may help. Only the fields a record keeps are judged; dirt in the
rest of a TMDB document (overview, poster, ...) is none of our business.
"""

from __future__ import annotations

import enum
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from movierec.ids import parse_user_id
from movierec.vocab import GENDERS, GENRES, OCCUPATIONS

__all__ = [
    "MovieRecord",
    "Parsed",
    "UserRecord",
    "Verdict",
    "merge_answers",
    "parse_movie",
    "parse_user",
]

# Problem kinds, per field.
MISSING = "missing"
NULL = "null"
WRONG_TYPE = "wrong_type"
OUT_OF_RANGE = "out_of_range"
OUT_OF_VOCAB = "out_of_vocab"

USER_NOT_FOUND_MESSAGE = "invalid userid"
MOVIE_NOT_FOUND_MESSAGE = "movie not found"

# Strict decimal syntax: Python's float()/int() also take "1_000", "nan", "infinity" and
# surrounding whitespace of any kind, none of which is a number the API means to send.
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_YEAR_SUFFIX_RE = re.compile(r"\+(\d{4})")
_OCCUPATION_BY_LOWER = {name.lower(): name for name in OCCUPATIONS}
_GENRE_BY_ID = dict(GENRES)
_MAX_TEXT = 1000
_MAX_AGE = 120


class Verdict(enum.Enum):
    FOUND = "found"
    NOT_FOUND = "not_found"  # the API says so: definitive
    INVALID = "invalid"  # an answer we cannot use: ask again later


@dataclass(frozen=True, slots=True)
class UserRecord:
    user_id: int
    age: int | None
    gender: str | None
    occupation: str | None


@dataclass(frozen=True, slots=True)
class MovieRecord:
    movie_id: str
    title: str | None
    year: int | None
    genres: tuple[str, ...]
    runtime: int | None
    language: str | None
    popularity: float | None
    vote_average: float | None
    vote_count: int | None
    tmdb_id: int | None
    imdb_id: str | None
    adult: bool | None
    release_date: str | None


@dataclass(frozen=True, slots=True)
class Parsed:
    verdict: Verdict
    record: UserRecord | MovieRecord | None = None
    problems: dict[str, str] = field(default_factory=dict)
    reason: str = ""  # why an answer is INVALID: not_object, message, wrong_id

    @property
    def complete(self) -> bool:
        return self.verdict is Verdict.FOUND and not self.problems


class _UnusableError(Exception):
    """A field value that cannot be used; args[0] is the problem kind."""


def _absent(value: object) -> bool:
    return value is None or value == "null"


def _number_text(value: str) -> str:
    text = value.strip(" ")
    if len(text) > 40 or not _NUMBER_RE.fullmatch(text):
        raise _UnusableError(WRONG_TYPE)
    return text


def _to_int(value: object) -> int:
    if isinstance(value, bool):  # JSON true is no count of anything
        raise _UnusableError(WRONG_TYPE)
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        number = float(_number_text(value))
        if number.is_integer():
            return int(number)
    raise _UnusableError(WRONG_TYPE)


def _to_float(value: object) -> float:
    if isinstance(value, bool):
        raise _UnusableError(WRONG_TYPE)
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        number = float(_number_text(value))
    else:
        raise _UnusableError(WRONG_TYPE)
    if not math.isfinite(number):
        raise _UnusableError(WRONG_TYPE)
    return number


def _to_text(value: object) -> str:
    if not isinstance(value, str):
        raise _UnusableError(WRONG_TYPE)
    text = value.strip()
    if not text or len(text) > _MAX_TEXT:
        raise _UnusableError(WRONG_TYPE)
    return text


def _to_bool(value: object) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise _UnusableError(WRONG_TYPE)


def _in_range(low: float, high: float, convert: Callable[[object], Any]) -> Callable[..., Any]:
    def parse(value: object) -> Any:
        number = convert(value)
        if not low <= number <= high:
            raise _UnusableError(OUT_OF_RANGE)
        return number

    return parse


def _gender(value: object) -> str:
    text = _to_text(value).upper()
    if text not in GENDERS:
        raise _UnusableError(OUT_OF_VOCAB)
    return text


def _occupation(value: object) -> str:
    name = _OCCUPATION_BY_LOWER.get(_to_text(value).lower())
    if name is None:
        raise _UnusableError(OUT_OF_VOCAB)
    return name


def _release_date(value: object) -> str:
    text = _to_text(value)
    if not _DATE_RE.fullmatch(text):
        raise _UnusableError(WRONG_TYPE)
    try:
        date.fromisoformat(text)
    except ValueError:
        raise _UnusableError(OUT_OF_RANGE) from None
    return text


def _genres(value: object) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _UnusableError(WRONG_TYPE)
    names: list[str] = []
    for item in value:
        name: object = item
        if isinstance(item, dict):
            name = item.get("name")
            if not isinstance(name, str) and type(item.get("id")) is int:
                name = _GENRE_BY_ID.get(item["id"])
        if not isinstance(name, str) or not name.strip():
            raise _UnusableError(WRONG_TYPE)  # one unreadable genre makes the list untrustworthy
        if name.strip() not in names:
            names.append(name.strip())
    return tuple(names)


# Record fields: (answer key, parser). A failed parse leaves the field None.
_USER_FIELDS: dict[str, tuple[str, Callable[[object], Any]]] = {
    "age": ("age", _in_range(1, _MAX_AGE, _to_int)),
    "gender": ("gender", _gender),
    "occupation": ("occupation", _occupation),
}
_MOVIE_FIELDS: dict[str, tuple[str, Callable[[object], Any]]] = {
    "title": ("title", _to_text),
    "genres": ("genres", _genres),
    "runtime": ("runtime", _in_range(1, 10_000, _to_int)),
    "language": ("original_language", _to_text),
    "popularity": ("popularity", _in_range(0, math.inf, _to_float)),
    "vote_average": ("vote_average", _in_range(0, 10, _to_float)),
    "vote_count": ("vote_count", _in_range(0, math.inf, _to_int)),
    "tmdb_id": ("tmdb_id", _in_range(1, math.inf, _to_int)),
    "imdb_id": ("imdb_id", _to_text),
    "adult": ("adult", _to_bool),
    "release_date": ("release_date", _release_date),
}
_PARSERS_BY_KEY = {
    "user": dict(_USER_FIELDS.values()),
    "movie": dict(_MOVIE_FIELDS.values()),
}


def _read_fields(
    data: dict[str, Any], spec: dict[str, tuple[str, Callable[[object], Any]]]
) -> tuple[dict[str, Any], dict[str, str]]:
    values: dict[str, Any] = {}
    problems: dict[str, str] = {}
    for name, (key, parse) in spec.items():
        values[name] = None
        if key not in data:
            problems[name] = MISSING
        elif _absent(data[key]):
            problems[name] = NULL
        else:
            try:
                values[name] = parse(data[key])
            except (_UnusableError, ValueError, OverflowError) as exc:
                problems[name] = exc.args[0] if isinstance(exc, _UnusableError) else WRONG_TYPE
    return values, problems


def _message(data: dict[str, Any], id_key: str) -> str | None:
    """The text of a {"message": ...} answer (no entity in it), else None."""
    if "message" not in data or not _absent(data.get(id_key)):
        return None
    message = data["message"]
    return message.strip().lower() if isinstance(message, str) else ""


def _envelope(data: object, id_key: str, not_found: str) -> Parsed | None:
    """The verdict on an answer that holds no entity (not an object, or a message), else
    None: the answer carries fields to read."""
    if not isinstance(data, dict):
        return Parsed(Verdict.INVALID, reason="not_object")
    message = _message(data, id_key)
    if message is None:
        return None
    if message == not_found:
        return Parsed(Verdict.NOT_FOUND)
    return Parsed(Verdict.INVALID, reason="message")


def parse_user(user_id: int, data: object) -> Parsed:
    """Judge the answer to GET /user/<user_id>."""
    verdict = _envelope(data, "user_id", USER_NOT_FOUND_MESSAGE)
    if verdict is not None:
        return verdict
    assert isinstance(data, dict)
    values, problems = _read_fields(data, _USER_FIELDS)
    answered = data.get("user_id")
    if _absent(answered):
        problems["user_id"] = MISSING if "user_id" not in data else NULL
    elif _answered_user_id(answered) != user_id:
        return Parsed(Verdict.INVALID, reason="wrong_id")
    return Parsed(Verdict.FOUND, UserRecord(user_id, **values), problems)


def _answered_user_id(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return parse_user_id(value.strip()) if isinstance(value, str) else None


def parse_movie(movie_id: str, data: object) -> Parsed:
    """Judge the answer to GET /movie/<movie_id>."""
    verdict = _envelope(data, "id", MOVIE_NOT_FOUND_MESSAGE)
    if verdict is not None:
        return verdict
    assert isinstance(data, dict)
    values, problems = _read_fields(data, _MOVIE_FIELDS)
    answered = data.get("id")
    if _absent(answered):
        problems["id"] = MISSING if "id" not in data else NULL
    elif answered != movie_id:
        return Parsed(Verdict.INVALID, reason="wrong_id")
    if values["genres"] is None:
        values["genres"] = ()
    # The id's year is the site's own; the release date only stands in for ids without one.
    suffix = _YEAR_SUFFIX_RE.fullmatch(movie_id[-5:])
    year = int(suffix.group(1)) if suffix else None
    if year is None and values["release_date"] is not None:
        year = int(values["release_date"][:4])
    return Parsed(Verdict.FOUND, MovieRecord(movie_id, year=year, **values), problems)


def _usable(kind: str, key: str, value: object) -> bool:
    if _absent(value):
        return False
    parse = _PARSERS_BY_KEY[kind].get(key)
    if parse is None:
        return True
    try:
        parse(value)
    except (_UnusableError, ValueError, OverflowError):
        return False
    return True


def merge_answers(kind: str, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """`old` with each field it lacks (missing, null, unreadable) taken from `new`.

    Two answers for the same id describe the same entity; a field dropped or nulled in one
    is usually present in the other, so together they are more complete than either.
    """
    merged = dict(old)
    for key, value in new.items():
        if key not in merged or (not _usable(kind, key, merged[key]) and _usable(kind, key, value)):
            merged[key] = value
    return merged
