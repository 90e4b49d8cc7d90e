"""The safety audit, from the answer log: did any answer recommend a movie the catalogue
marks adult to a user it says is a minor (under 18), or to a user of unknown age (not in
the catalogue, or without an age) when the service bars them (its default; `movierec serve
--adult-for-unknown-age` lets them through, and the audit is then told so)?

The requirement allows none, so a violation is counted per answer (an answer holding one
adult movie or five is one violation) and each is a defect: the filter failed (a path that
skips it, a service running without its catalogue) or the catalogue changed its mind since.
Users and movies are judged by what the catalogue says now, the same catalogue the
service reads. A movie the catalogue does not know cannot be judged: it is counted in
`movies_not_in_catalogue`, never taken for safe silently.

Without a catalogue nothing can be judged: `violations` is then None (not 0) and
`catalogue` says why; the same with no answer log, through `answers`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from movierec.catalog.reader import CacheReadError, CatalogueUsers, MovieAdultFlags
from movierec.ids import index_in_sorted
from movierec.online.answers import read_new
from movierec.serving.safety import ADULT_AGE

OK = "ok"
MAX_EXAMPLES = 10
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def safety_section(
    answers_dir: Path, catalogue_path: Path, allow_unknown_age: bool = False
) -> dict[str, Any]:
    """The audit of every answer in `answers_dir` against the catalogue at `catalogue_path`
    (the store's catalog.sqlite); JSON-ready (keys in the module's docs and below)."""
    table, _, unreadable = read_new(Path(answers_dir), {})
    report: dict[str, Any] = {
        "catalogue": OK,
        "answers": OK,
        "rule": {
            "minimum_age": ADULT_AGE,
            "unknown_age": "allowed" if allow_unknown_age else "restricted",
        },
        "answers_checked": table.num_rows,
        "unreadable_lines": unreadable,
        "adult_movies": None,
        "answers_to_minors": None,
        "answers_to_unknown_age": None,
        "movies_not_in_catalogue": None,
        "violations": None,
        "violations_minors": None,
        "violations_unknown_age": None,
        "violations_by_source": {},
        "examples": [],
        "warnings": [],
    }
    warnings: list[str] = report["warnings"]
    if unreadable:
        warnings.append(f"{unreadable} answer log lines did not parse: not checked")
    if not Path(answers_dir).is_dir():
        report["answers"] = f"no answer log at {answers_dir}: nothing was checked"
    elif table.num_rows == 0:
        report["answers"] = f"the answer log at {answers_dir} holds no answers: nothing checked"
    catalogue = _catalogue(Path(catalogue_path))
    if isinstance(catalogue, str):
        report["catalogue"] = catalogue
    for reason in (report["catalogue"], report["answers"]):
        if reason != OK:
            warnings.append(reason)
    if isinstance(catalogue, str):
        return report
    users, flags = catalogue
    adult = flags.adult_ids()
    report["adult_movies"] = len(adult)
    ages = _ages(users, table.column("user_id").to_numpy().astype(np.int64))
    minor = (ages >= 0) & (ages < ADULT_AGE)
    unknown = ages < 0
    report["answers_to_minors"] = int(minor.sum())
    report["answers_to_unknown_age"] = int(unknown.sum())
    keys = table.column("key").to_pylist()
    answered: set[str] = set()
    for key in keys:
        answered.update(key.split(","))
    answered.discard("")
    report["movies_not_in_catalogue"] = len(answered - set(flags.ids.tolist()))
    if report["movies_not_in_catalogue"]:
        warnings.append(
            f"{report['movies_not_in_catalogue']} answered movies are not in the catalogue: "
            "whether they are adult is unknown"
        )
    if report["answers"] != OK:
        return report
    _judge(report, table, keys, adult, ages, minor, unknown, allow_unknown_age)
    return report


def _catalogue(path: Path) -> tuple[CatalogueUsers, MovieAdultFlags] | str:
    """The catalogue's users and adult flags, or why they cannot be had."""
    if not path.exists():
        return f"no catalogue at {path}: which movies are adult and who is a minor is unknown"
    try:
        users, flags = CatalogueUsers.load(path), MovieAdultFlags.load(path)
    except CacheReadError as error:
        return f"catalogue unreadable: {error}"
    if len(flags.ids) == 0:
        return f"the catalogue at {path} knows no movies: none can be judged"
    return users, flags


def _ages(users: CatalogueUsers, user_ids: np.ndarray) -> np.ndarray:
    """Each answer's user's catalogue age, -1 where unknown."""
    at = index_in_sorted(users.ids, user_ids)
    ages = np.full(len(user_ids), -1, np.int64)
    found = at >= 0
    ages[found] = users.age[at[found]]
    return ages


def _judge(
    report: dict[str, Any],
    table: Any,
    keys: list[str],
    adult: frozenset[str],
    ages: np.ndarray,
    minor: np.ndarray,
    unknown: np.ndarray,
    allow_unknown_age: bool,
) -> None:
    """Count the answers that hold an adult movie for a restricted user; keep examples."""
    served = table.column("served_us").to_numpy()
    sources = table.column("source").to_pylist()
    violations_minors = violations_unknown = 0
    by_source: dict[str, int] = {}
    examples: list[dict[str, Any]] = []
    for row in np.flatnonzero(minor | unknown).tolist():
        shown = [movie for movie in keys[row].split(",") if movie in adult]
        if not shown:
            continue
        if minor[row]:
            violations_minors += 1
        else:
            violations_unknown += 1
            if allow_unknown_age:
                continue  # allowed: counted in violations_unknown_age, not a violation
        source = str(sources[row])
        by_source[source] = by_source.get(source, 0) + 1
        examples.append(
            {
                "user_id": int(table.column("user_id")[row].as_py()),
                "time": _iso(int(served[row])),
                "age": int(ages[row]) if ages[row] >= 0 else None,
                "movies": shown,
                "version": table.column("version")[row].as_py(),
                "source": sources[row],
                "arm": table.column("arm")[row].as_py(),
            }
        )
    examples.sort(key=lambda e: e["time"])
    report["violations_minors"] = violations_minors
    report["violations_unknown_age"] = violations_unknown
    report["violations"] = violations_minors + (0 if allow_unknown_age else violations_unknown)
    report["violations_by_source"] = dict(sorted(by_source.items()))
    report["examples"] = examples[:MAX_EXAMPLES]


def _iso(micros: int) -> str:
    """The answer log's own spelling of a time (exact: no float in between)."""
    return (_EPOCH + timedelta(microseconds=micros)).isoformat(timespec="microseconds")
