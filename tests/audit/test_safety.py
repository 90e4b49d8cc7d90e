"""The safety audit over hand-made answer logs and catalogues whose violations are known:
one answer that shows an adult movie to a minor is found, with its user and time; a clean
log gives 0; no catalogue (or no log) is said, never a 0."""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.audit.safety import safety_section
from movierec.catalog.cache import OK, CacheEntry, CatalogCache
from movierec.catalog.records import MovieRecord, UserRecord

MINOR, GROWN, NO_AGE, UNCATALOGUED = 11, 12, 13, 14
ADULT, ALSO_ADULT, PLAIN, OTHER = "blue+velvet+1986", "x+2001", "up+2009", "cars+2006"
VIOLATION_TIME = "2025-03-01T10:15:02.123456+00:00"


def write_catalogue(path: Path) -> Path:
    cache = CatalogCache(path)
    flagged = {ADULT: True, ALSO_ADULT: True, PLAIN: False, OTHER: None}
    cache.write(
        [
            CacheEntry("movie", m, OK, MovieRecord(m, "T", None, (), *[None] * 7, a, None))
            for m, a in flagged.items()
        ]
        + [
            CacheEntry("user", MINOR, OK, UserRecord(MINOR, 16, "F", "K-12 student")),
            CacheEntry("user", GROWN, OK, UserRecord(GROWN, 18, "M", "writer")),
            CacheEntry("user", NO_AGE, OK, UserRecord(NO_AGE, None, "M", None)),
        ]
    )
    cache.close()
    return path


def write_answers(directory: Path, answers: list[tuple[str, int, list[str]]]) -> Path:
    """(time, user, movies) as the service's answer log writes them, one file per hour."""
    directory.mkdir(parents=True, exist_ok=True)
    for when, user, movies in answers:
        record = {
            "time": when,
            "user": user,
            "version": "20250301T000000Z-als",
            "experiment": None,
            "arm": None,
            "source": "model",
            "items": ",".join(movies),
        }
        hour = when[:13].replace("-", "").replace("T", "")
        with open(directory / f"answers-{hour}.jsonl", "ab") as handle:
            handle.write(orjson.dumps(record) + b"\n")
    return directory


CLEAN = [
    ("2025-03-01T09:00:00.000001+00:00", MINOR, [PLAIN, OTHER]),
    ("2025-03-01T09:00:01.000000+00:00", GROWN, [ADULT, PLAIN]),  # 18: an adult
    ("2025-03-01T09:00:02.000000+00:00", NO_AGE, [PLAIN]),
    ("2025-03-01T09:00:03.000000+00:00", UNCATALOGUED, [OTHER, PLAIN]),
]


def test_the_one_answer_showing_an_adult_movie_to_a_minor_is_found(tmp_path: Path) -> None:
    answers = write_answers(
        tmp_path / "answers", [*CLEAN, (VIOLATION_TIME, MINOR, [PLAIN, ADULT, ALSO_ADULT])]
    )
    report = safety_section(answers, write_catalogue(tmp_path / "catalog.sqlite"))
    assert report["catalogue"] == report["answers"] == "ok"
    assert report["violations"] == report["violations_minors"] == 1
    assert report["violations_unknown_age"] == 0
    assert report["examples"] == [
        {
            "user_id": MINOR,
            "time": VIOLATION_TIME,
            "age": 16,
            "movies": [ADULT, ALSO_ADULT],
            "version": "20250301T000000Z-als",
            "source": "model",
            "arm": None,
        }
    ]
    assert report["violations_by_source"] == {"model": 1}
    assert report["answers_checked"] == 5 and report["answers_to_minors"] == 2
    assert report["answers_to_unknown_age"] == 2 and report["adult_movies"] == 2
    assert report["movies_not_in_catalogue"] == 0 and report["warnings"] == []


def test_a_clean_log_has_no_violations(tmp_path: Path) -> None:
    report = safety_section(
        write_answers(tmp_path / "answers", CLEAN), write_catalogue(tmp_path / "c.sqlite")
    )
    assert report["violations"] == 0 and report["examples"] == []
    assert report["rule"] == {"minimum_age": 18, "unknown_age": "restricted"}


def test_unknown_ages_are_violations_unless_the_service_allows_them(tmp_path: Path) -> None:
    late = "2025-03-01T11:00:00.000000+00:00"
    answers = write_answers(
        tmp_path / "answers",
        [*CLEAN, (late, NO_AGE, [ADULT]), (late, UNCATALOGUED, [PLAIN, ALSO_ADULT])],
    )
    catalogue = write_catalogue(tmp_path / "c.sqlite")
    barred = safety_section(answers, catalogue)
    assert barred["violations"] == barred["violations_unknown_age"] == 2
    assert {(e["user_id"], e["age"]) for e in barred["examples"]} == {
        (NO_AGE, None),
        (UNCATALOGUED, None),
    }
    allowed = safety_section(answers, catalogue, allow_unknown_age=True)
    assert allowed["violations"] == 0 and allowed["violations_unknown_age"] == 2
    assert allowed["examples"] == [] and allowed["rule"]["unknown_age"] == "allowed"


def test_no_catalogue_or_no_answers_is_said_and_violations_are_unknown(tmp_path: Path) -> None:
    answers = write_answers(tmp_path / "answers", [(VIOLATION_TIME, MINOR, [ADULT])])
    report = safety_section(answers, tmp_path / "missing.sqlite")
    assert report["violations"] is None and report["adult_movies"] is None
    assert "no catalogue at" in report["catalogue"] and "missing.sqlite" in report["catalogue"]
    assert report["catalogue"] in report["warnings"] and report["answers_checked"] == 1
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not sqlite at all" * 100)
    assert safety_section(answers, junk)["catalogue"].startswith("catalogue unreadable")
    empty = tmp_path / "empty.sqlite"
    CatalogCache(empty).close()
    assert "knows no movies" in safety_section(answers, empty)["catalogue"]

    catalogue = write_catalogue(tmp_path / "c.sqlite")
    nothing = safety_section(tmp_path / "no-log", catalogue)
    assert nothing["violations"] is None and "no answer log at" in nothing["answers"]
    (tmp_path / "quiet").mkdir()
    quiet = safety_section(tmp_path / "quiet", catalogue)
    assert quiet["violations"] is None and "holds no answers" in quiet["answers"]


def test_unreadable_lines_and_unknown_movies_are_warned_of(tmp_path: Path) -> None:
    answers = write_answers(tmp_path / "answers", [(VIOLATION_TIME, MINOR, ["who+knows+1999"])])
    with open(answers / "answers-2025030110.jsonl", "ab") as handle:
        handle.write(b"{not json\n")
    report = safety_section(answers, write_catalogue(tmp_path / "c.sqlite"))
    assert report["unreadable_lines"] == 1 and report["movies_not_in_catalogue"] == 1
    assert len(report["warnings"]) == 2 and report["violations"] == 0


# ---- against a slow reference, over random logs ----------------------------------------
AGES = {MINOR: 16, GROWN: 18, NO_AGE: None}  # UNCATALOGUED: not there at all
_CATALOGUE = tempfile.TemporaryDirectory(prefix="safety-audit-")
_CATALOGUE_PATH = write_catalogue(Path(_CATALOGUE.name) / "catalog.sqlite")


@settings(max_examples=60, deadline=None)
@given(
    answers=st.lists(
        st.tuples(
            st.integers(0, 10**6),
            st.sampled_from([MINOR, GROWN, NO_AGE, UNCATALOGUED]),
            st.lists(st.sampled_from([ADULT, ALSO_ADULT, PLAIN, OTHER]), max_size=4),
        ),
        min_size=1,
        max_size=30,
    ),
    allow_unknown_age=st.booleans(),
)
def test_the_counts_agree_with_a_line_by_line_reference(
    answers: list[tuple[int, int, list[str]]], allow_unknown_age: bool
) -> None:
    with tempfile.TemporaryDirectory() as folder:
        timed = [(f"2025-03-01T09:00:00.{us:06d}+00:00", u, m) for us, u, m in answers]
        report = safety_section(
            write_answers(Path(folder), timed), _CATALOGUE_PATH, allow_unknown_age
        )
    minors = unknown = violations = 0
    for _, user, movies in answers:
        age = AGES.get(user)
        shows_adult = ADULT in movies or ALSO_ADULT in movies
        if age is None:
            unknown += 1
            violations += shows_adult and not allow_unknown_age
        elif age < 18:
            minors += 1
            violations += shows_adult
    assert report["answers_to_minors"] == minors and report["answers_to_unknown_age"] == unknown
    assert report["violations"] == violations
    assert len(report["examples"]) == min(10, violations)
    assert [e["time"] for e in report["examples"]] == sorted(e["time"] for e in report["examples"])
