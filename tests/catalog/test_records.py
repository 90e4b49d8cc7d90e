"""Normalisation of the site API's answers (SPEC section 2) into typed records."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.catalog.records import (
    MovieRecord,
    UserRecord,
    Verdict,
    merge_answers,
    parse_movie,
    parse_user,
)
from movierec.vocab import OCCUPATIONS

STUDENT = "college/grad student"
USER = {"user_id": 12, "age": 27, "occupation": STUDENT, "gender": "M"}
MOVIE_ID = "12+years+a+slave+2013"
MOVIE: dict[str, Any] = {
    "id": MOVIE_ID, "tmdb_id": 76203, "imdb_id": "tt2024544",
    "title": "12 Years a Slave", "original_title": "12 Years a Slave",
    "adult": "False", "belongs_to_collection": {}, "budget": "20000000",
    "genres": [{"id": 18, "name": "Drama"}, {"id": 36, "name": "History"}],
    "homepage": "null", "original_language": "en", "overview": "...",
    "popularity": "30.316249", "poster_path": "/kb3X943WMIJYVg4SOAyK0pmWL5D.jpg",
    "production_companies": [{"name": "Plan B Entertainment", "id": 81}],
    "production_countries": [{"iso_3166_1": "US", "name": "United States of America"}],
    "release_date": "2013-10-18", "revenue": "187000000", "runtime": 134,
    "spoken_languages": [{"iso_639_1": "en", "name": "English"}],
    "status": "Released", "vote_average": "7.9", "vote_count": "3787",
}  # fmt: skip
SPEC_MOVIE = MovieRecord(
    movie_id=MOVIE_ID, title="12 Years a Slave", year=2013, genres=("Drama", "History"),
    runtime=134, language="en", popularity=30.316249, vote_average=7.9, vote_count=3787,
    tmdb_id=76203, imdb_id="tt2024544", adult=False, release_date="2013-10-18",
)  # fmt: skip


_DROP = object()  # a field left out of the answer


def movie(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(MOVIE)
    for key, value in changes.items():
        if value is _DROP:
            del data[key]
        else:
            data[key] = value
    return data


def test_spec_user() -> None:
    parsed = parse_user(12, USER)
    assert parsed.verdict is Verdict.FOUND and parsed.complete
    assert parsed.record == UserRecord(12, 27, "M", STUDENT)


def test_spec_movie_with_numbers_as_strings() -> None:
    parsed = parse_movie(MOVIE_ID, MOVIE)
    assert parsed.verdict is Verdict.FOUND and parsed.problems == {}
    assert parsed.record == SPEC_MOVIE


@pytest.mark.parametrize(
    ("changes", "field", "value", "problem"),
    [
        ({"runtime": "134"}, "runtime", 134, None),
        ({"runtime": 134.0}, "runtime", 134, None),
        ({"tmdb_id": " 76203 "}, "tmdb_id", 76203, None),
        ({"vote_count": "3787.0"}, "vote_count", 3787, None),
        ({"vote_average": 7.9}, "vote_average", 7.9, None),
        ({"adult": "True"}, "adult", True, None),
        ({"adult": False}, "adult", False, None),
        ({"runtime": "null"}, "runtime", None, "null"),
        ({"runtime": None}, "runtime", None, "null"),
        ({"runtime": _DROP}, "runtime", None, "missing"),
        ({"runtime": "long"}, "runtime", None, "wrong_type"),
        ({"runtime": True}, "runtime", None, "wrong_type"),
        ({"runtime": [134]}, "runtime", None, "wrong_type"),
        ({"runtime": "13.4"}, "runtime", None, "wrong_type"),
        ({"runtime": -5}, "runtime", None, "out_of_range"),
        ({"popularity": "nan"}, "popularity", None, "wrong_type"),
        ({"popularity": "1_000"}, "popularity", None, "wrong_type"),
        ({"popularity": "1e999"}, "popularity", None, "wrong_type"),
        ({"vote_average": "11"}, "vote_average", None, "out_of_range"),
        ({"vote_count": "9" * 5000}, "vote_count", None, "wrong_type"),
        ({"adult": "maybe"}, "adult", None, "wrong_type"),
        ({"title": ""}, "title", None, "wrong_type"),
        ({"title": 1917}, "title", None, "wrong_type"),
        ({"release_date": "2013-13-45"}, "release_date", None, "out_of_range"),
        ({"release_date": "18/10/2013"}, "release_date", None, "wrong_type"),
        ({"original_language": None}, "language", None, "null"),
        ({"genres": "Drama"}, "genres", (), "wrong_type"),
        ({"genres": [{"id": 18}]}, "genres", ("Drama",), None),
        ({"genres": ["Drama", "Drama", "War"]}, "genres", ("Drama", "War"), None),
        ({"genres": []}, "genres", (), None),
        ({"genres": None}, "genres", (), "null"),
    ],
)
def test_movie_field(changes: dict[str, Any], field: str, value: Any, problem: str | None) -> None:
    parsed = parse_movie(MOVIE_ID, movie(**changes))
    assert parsed.verdict is Verdict.FOUND
    assert getattr(parsed.record, field) == value
    assert parsed.problems == ({field: problem} if problem else {})


def test_year_comes_from_the_id_and_else_from_the_release_date() -> None:
    record = parse_movie(MOVIE_ID, movie(release_date=None)).record
    assert isinstance(record, MovieRecord) and record.year == 2013
    undated = parse_movie("old+film+", movie(id="old+film+", release_date="1931-02-03")).record
    assert isinstance(undated, MovieRecord) and undated.year == 1931
    nothing = parse_movie("old+film+", movie(id="old+film+", release_date=_DROP)).record
    assert isinstance(nothing, MovieRecord) and nothing.year is None


@pytest.mark.parametrize(
    ("changes", "expected", "problems"),
    [
        ({"age": "27"}, UserRecord(12, 27, "M", STUDENT), {}),
        ({"user_id": "12"}, UserRecord(12, 27, "M", STUDENT), {}),
        ({"gender": "f"}, UserRecord(12, 27, "F", STUDENT), {}),
        ({"occupation": "Programmer"}, UserRecord(12, 27, "M", "programmer"), {}),
        ({"gender": "X"}, UserRecord(12, 27, None, STUDENT), {"gender": "out_of_vocab"}),
        ({"occupation": "pilot"}, UserRecord(12, 27, "M", None), {"occupation": "out_of_vocab"}),
        ({"occupation": 4}, UserRecord(12, 27, "M", None), {"occupation": "wrong_type"}),
        ({"age": "null"}, UserRecord(12, None, "M", STUDENT), {"age": "null"}),
        ({"age": 0}, UserRecord(12, None, "M", STUDENT), {"age": "out_of_range"}),
        ({"age": 27.5}, UserRecord(12, None, "M", STUDENT), {"age": "wrong_type"}),
        ({"user_id": None}, UserRecord(12, 27, "M", STUDENT), {"user_id": "null"}),
    ],
)  # fmt: skip
def test_user_fields(changes: dict[str, Any], expected: UserRecord, problems: dict) -> None:
    parsed = parse_user(12, {**USER, **changes})
    assert (parsed.verdict, parsed.record, parsed.problems) == (Verdict.FOUND, expected, problems)


def test_missing_user_fields_are_none_and_listed() -> None:
    parsed = parse_user(12, {"user_id": 12})
    assert parsed.record == UserRecord(12, None, None, None)
    assert parsed.problems == dict.fromkeys(("age", "gender", "occupation"), "missing")
    assert not parsed.complete


def test_not_found_messages_are_definitive() -> None:
    assert parse_user(99, {"message": "invalid userID"}).verdict is Verdict.NOT_FOUND
    assert parse_movie("x+2000", {"message": "movie not found"}).verdict is Verdict.NOT_FOUND
    # Each message belongs to its own endpoint only.
    assert parse_user(99, {"message": "movie not found"}).verdict is Verdict.INVALID


@pytest.mark.parametrize(
    "answer",
    [
        {"message": "rate limit exceeded"},
        {"message": None},
        {**USER, "user_id": 13},
        {**USER, "user_id": "13"},
        {**USER, "user_id": True},
        [USER],
        "invalid userID",
        None,
        12,
    ],
)
def test_unusable_user_answers_are_invalid(answer: object) -> None:
    parsed = parse_user(12, answer)
    assert parsed.verdict is Verdict.INVALID and parsed.record is None and parsed.reason


def test_movie_answer_for_another_id_is_invalid() -> None:
    parsed = parse_movie("walle+2008", MOVIE)
    assert (parsed.verdict, parsed.reason) == (Verdict.INVALID, "wrong_id")


def test_merge_fills_what_one_answer_lacks() -> None:
    first = movie(runtime=_DROP, title=None, popularity="oops")
    second = movie(genres=None, release_date="null")
    merged = merge_answers("movie", first, second)
    assert parse_movie(MOVIE_ID, merged).record == SPEC_MOVIE
    assert parse_movie(MOVIE_ID, merged).complete
    # A field both lack stays lacking; a usable field is never replaced.
    both = merge_answers("movie", movie(runtime=None), movie(runtime=_DROP, title="Other"))
    parsed = parse_movie(MOVIE_ID, both)
    assert parsed.problems == {"runtime": "null"}
    assert isinstance(parsed.record, MovieRecord) and parsed.record.title == "12 Years a Slave"
    user = merge_answers("user", {"user_id": 12, "age": None}, {**USER, "age": "27"})
    assert parse_user(12, user).record == UserRecord(12, 27, "M", STUDENT)


# --- any JSON at all -----------------------------------------------------------------------

JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=30)
    | st.sampled_from(["null", "True", "7.9", "20000000", " 12 ", "1e400", "2013-10-18", "M"])
)
JSON = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner),
    max_leaves=12,
)
USER_KEYS = st.sampled_from(["user_id", "age", "gender", "occupation", "message"])
MOVIE_KEYS = st.sampled_from([*MOVIE, "message"])


def _check_user(parsed: Any) -> None:
    record = parsed.record
    if parsed.verdict is Verdict.FOUND:
        assert isinstance(record, UserRecord) and record.user_id == 12
        assert record.age is None or (isinstance(record.age, int) and 1 <= record.age <= 120)
        assert record.gender in (None, "M", "F")
        assert record.occupation is None or record.occupation in OCCUPATIONS
    else:
        assert record is None


def _check_movie(parsed: Any) -> None:
    record = parsed.record
    if parsed.verdict is not Verdict.FOUND:
        assert record is None
        return
    assert isinstance(record, MovieRecord) and record.movie_id == MOVIE_ID
    assert all(isinstance(g, str) and g for g in record.genres)
    for name in ("runtime", "vote_count", "tmdb_id", "year"):
        value = getattr(record, name)
        assert value is None or (type(value) is int and value >= 0), name
    for name in ("popularity", "vote_average"):
        value = getattr(record, name)
        assert value is None or (type(value) is float and math.isfinite(value)), name
    assert record.adult in (None, True, False)
    for name in ("title", "language", "imdb_id", "release_date"):
        assert getattr(record, name) is None or isinstance(getattr(record, name), str)


@settings(max_examples=300, deadline=None)
@given(JSON)
def test_any_json_never_raises(data: object) -> None:
    _check_user(parse_user(12, data))
    _check_movie(parse_movie(MOVIE_ID, data))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(USER_KEYS, JSON), st.dictionaries(MOVIE_KEYS, JSON))
def test_any_values_of_known_fields_never_raise(user: dict, film: dict) -> None:
    _check_user(parse_user(12, {**USER, **user}))
    _check_movie(parse_movie(MOVIE_ID, {**MOVIE, **film}))
    _check_user(parse_user(12, user))
    _check_movie(parse_movie(MOVIE_ID, film))


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(MOVIE_KEYS, JSON), st.dictionaries(MOVIE_KEYS, JSON))
def test_merge_never_raises_and_never_loses_a_usable_field(a: dict, b: dict) -> None:
    merged = merge_answers("movie", {**MOVIE, **a}, b)
    _check_movie(parse_movie(MOVIE_ID, merged))
    first = parse_movie(MOVIE_ID, {**MOVIE, **a})
    after = parse_movie(MOVIE_ID, merged)
    if first.verdict is Verdict.FOUND and after.verdict is Verdict.FOUND:
        assert set(after.problems) <= set(first.problems)
