"""The groups fairness is measured over: a user's group under each grouping.

    age_group   the API's age, in the bands of `movierec.vocab.AGE_GROUPS` ("under 18" ...
                "55+")
    gender      "M" or "F" as the API says
    occupation  one of `movierec.vocab.OCCUPATIONS`
    tenure      "new" when the user's first event in the store (a watch, a rating or a
                recommendation request, whichever came first) is less than NEW_USER_DAYS
                before the moment judged (the test cut offline, the request online), and
                a user with no event before that moment is new too; "returning" otherwise

Anything the catalogue does not know (a user it never answered for, an age, gender or
occupation the API left out) is the group "unknown", so those users are counted and
compared like any other group instead of vanishing from the figures.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from movierec.catalog.reader import Catalogue
from movierec.evaluation.offline import demographics
from movierec.ids import find_in_sorted
from movierec.store.events import EventStore
from movierec.times import DAY_NS
from movierec.vocab import AGE_GROUPS, GENDERS, OCCUPATIONS, age_group

# A week: the site's users come back every day or two (0.6 visits a day on average), so a
# week is several visits, enough for the models to have seen them; and it is the span of
# the weekly cycle, so "new" does not depend on the weekday a user joined.
NEW_USER_DAYS = 7

UNKNOWN = "unknown"
NEW, RETURNING = "new", "returning"
# Every group of each grouping, in the order reports show them.
LABELS: dict[str, tuple[str, ...]] = {
    "age_group": (*(name for _, _, name in AGE_GROUPS), UNKNOWN),
    "gender": (*GENDERS, UNKNOWN),
    "occupation": (*OCCUPATIONS, UNKNOWN),
    "tenure": (NEW, RETURNING),
}
GROUPINGS: tuple[str, ...] = tuple(LABELS)
NEVER = np.iinfo(np.int64).max  # the first event of a user the store has never seen


def age_label(age: int) -> str:
    """The age band of an age from the API; negative (the reader's unknown) is unknown."""
    return UNKNOWN if age < 0 else AGE_GROUPS[age_group(age)][2]


def gender_label(code: int) -> str:
    return GENDERS[code] if 0 <= code < len(GENDERS) else UNKNOWN


def occupation_label(code: int) -> str:
    return OCCUPATIONS[code] if 0 <= code < len(OCCUPATIONS) else UNKNOWN


def tenure_label(first_seen_ns: int, at_ns: int, new_user_days: float = NEW_USER_DAYS) -> str:
    """New when the first event is less than `new_user_days` before `at_ns` (or after it)."""
    return NEW if at_ns - first_seen_ns < _span_ns(new_user_days) else RETURNING


def _span_ns(days: float) -> int:
    """The span in whole nanoseconds, rounded up: for integer times, t < span exactly when
    t < days x DAY_NS (in float64, epoch nanoseconds would lose their last digits)."""
    return math.ceil(days * DAY_NS)


def demographic_groups(catalogue: Catalogue, user_ids: np.ndarray) -> dict[str, np.ndarray]:
    """Age group, gender and occupation labels (object arrays) of each user."""
    age, gender, occupation = demographics(catalogue, np.asarray(user_ids, dtype=np.int64))
    bands = np.array(LABELS["age_group"], dtype=object)
    band = np.full(len(age), len(AGE_GROUPS), dtype=np.int64)  # the last label: unknown
    known = age >= 0
    # vocab.age_group per distinct age: a few dozen ages among any number of users.
    ages, at = np.unique(age[known], return_inverse=True)
    band[known] = np.array([age_group(int(a)) for a in ages], dtype=np.int64)[at]
    return {
        "age_group": bands[band],
        "gender": _coded(gender, LABELS["gender"]),
        "occupation": _coded(occupation, LABELS["occupation"]),
    }


def _coded(codes: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
    """Labels of codes, the last label (unknown) for -1 or anything out of range."""
    names = np.array(labels, dtype=object)
    valid = (codes >= 0) & (codes < len(labels) - 1)
    return names[np.where(valid, codes, len(labels) - 1)]


def tenure_groups(
    first_seen_ns: np.ndarray, at_ns: np.ndarray | int, new_user_days: float = NEW_USER_DAYS
) -> np.ndarray:
    """ "new" or "returning" per user (see the module's docstring), as an object array."""
    since = np.asarray(at_ns, dtype=np.int64) - np.asarray(first_seen_ns, dtype=np.int64)
    new = since < _span_ns(new_user_days)
    return np.where(new, NEW, RETURNING).astype(object)


_FIRST_SEEN_SQL = """
SELECT user_id, epoch_ns(min(time)) AS first_ns FROM (
    SELECT user_id, time FROM watch UNION ALL SELECT user_id, time FROM rate
    UNION ALL SELECT user_id, time FROM recommendation
) GROUP BY user_id
"""


def first_seen(store: EventStore, user_ids: np.ndarray) -> np.ndarray:
    """Each user's first event time in the store (epoch ns), NEVER for users without one."""
    with contextlib.closing(store.connect()) as con:
        rows = con.sql(_FIRST_SEEN_SQL).fetchnumpy()
    return first_seen_of(rows["user_id"], rows["first_ns"], user_ids)


def first_seen_of(
    known_users: np.ndarray, known_first_ns: np.ndarray, user_ids: np.ndarray
) -> np.ndarray:
    """Look up each of `user_ids` among (known_users, known_first_ns), NEVER if absent."""
    order = np.argsort(known_users, kind="stable")
    users = np.asarray(known_users, dtype=np.int64)[order]
    first = np.asarray(known_first_ns, dtype=np.int64)[order]
    at, hit = find_in_sorted(users, np.asarray(user_ids, dtype=np.int64))
    out = np.full(len(hit), NEVER, dtype=np.int64)
    out[hit] = first[at[hit]]
    return out


def user_groups(
    catalogue: Catalogue,
    user_ids: np.ndarray,
    first_seen_ns: np.ndarray,
    at_ns: np.ndarray | int,
    new_user_days: float = NEW_USER_DAYS,
) -> dict[str, np.ndarray]:
    """Every grouping's label per user (or per request, with one `at_ns` each)."""
    return {
        **demographic_groups(catalogue, user_ids),
        "tenure": tenure_groups(first_seen_ns, at_ns, new_user_days),
    }


def catalogue_warnings(catalogue: Catalogue, user_ids: np.ndarray) -> list[str]:
    """What to say when the catalogue knows few of the users judged (they fall into every
    demographic's unknown group, which a missing cache would make of everyone)."""
    if len(user_ids) == 0:
        return []
    known = float(np.isin(user_ids, catalogue.user_ids).mean())
    if known == 0:
        return ["the catalogue knows none of these users: every age, gender and occupation "
                "is unknown (is the catalogue cache beside the store?)"]  # fmt: skip
    if known < 0.9:
        return [f"the catalogue knows only {known:.0%} of these users: the rest are unknown"]
    return []
