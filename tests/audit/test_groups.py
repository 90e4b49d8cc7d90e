"""A user's group under each grouping: the bands and vocabularies of the API, unknown as
its own group, and new vs returning at its exact boundary."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from movierec.audit import reference
from movierec.audit.groups import (
    LABELS,
    NEVER,
    NEW_USER_DAYS,
    age_label,
    demographic_groups,
    first_seen,
    gender_label,
    occupation_label,
    tenure_groups,
    tenure_label,
    user_groups,
)
from movierec.catalog.cache import OK, CacheEntry, CatalogCache
from movierec.catalog.reader import Catalogue
from movierec.catalog.records import UserRecord
from movierec.times import DAY_NS
from movierec.vocab import OCCUPATIONS
from tests.support.online import SEC, OnlineWorld, Request
from tests.support.store import T0


def catalogue_of(path: Path, users: list[UserRecord]) -> Catalogue:
    cache = CatalogCache(path)
    cache.write([CacheEntry("user", u.user_id, OK, u) for u in users])
    cache.close()
    return Catalogue.load(path)


def test_age_bands_at_their_edges_and_unknown() -> None:
    assert [age_label(a) for a in (0, 17, 18, 24, 25, 54, 55, 99)] == [
        "under 18", "under 18", "18-24", "18-24", "25-34", "45-54", "55+", "55+",
    ]  # fmt: skip
    assert age_label(-1) == "unknown"
    assert gender_label(0) == "M" and gender_label(1) == "F" and gender_label(-1) == "unknown"
    assert occupation_label(OCCUPATIONS.index("writer")) == "writer"
    assert occupation_label(-1) == occupation_label(len(OCCUPATIONS)) == "unknown"


def test_new_means_a_first_event_less_than_a_week_before() -> None:
    at = T0 + 30 * DAY_NS
    week = NEW_USER_DAYS * DAY_NS
    assert tenure_label(at - week, at) == "returning"  # exactly a week: no longer new
    assert tenure_label(at - week + 1, at) == "new"
    assert tenure_label(at + DAY_NS, at) == "new"  # first seen after the moment judged
    assert tenure_label(NEVER, at) == "new"  # never seen at all
    assert tenure_label(at - 3 * DAY_NS, at, new_user_days=2) == "returning"


def test_users_the_catalogue_does_not_know_are_unknown_in_every_demographic(
    tmp_path: Path,
) -> None:
    catalogue = catalogue_of(
        tmp_path / "catalog.sqlite",
        [
            UserRecord(1, 30, "F", "writer"),
            UserRecord(2, None, None, None),  # the API left everything out
            UserRecord(3, 16, "M", "K-12 student"),
        ],
    )
    groups = demographic_groups(catalogue, np.array([3, 1, 2, 9]))  # 9: never answered
    assert groups["age_group"].tolist() == ["under 18", "25-34", "unknown", "unknown"]
    assert groups["gender"].tolist() == ["M", "F", "unknown", "unknown"]
    assert groups["occupation"].tolist() == ["K-12 student", "writer", "unknown", "unknown"]
    for grouping, labels in groups.items():
        assert set(labels.tolist()) <= set(LABELS[grouping])


def test_first_seen_is_the_earliest_watch_rating_or_request(tmp_path: Path) -> None:
    world = OnlineWorld(tmp_path)
    world.batch(
        requests=[Request(T0 + 5 * SEC, 1, items=("a+2000",)), Request(T0 + 9 * SEC, 3)],
        watches=[(T0 + 7 * SEC, 1, "a+2000", 0), (T0 + 2 * SEC, 2, "a+2000", 0)],
        rates=[(T0 + 1 * SEC, 2, "a+2000", 4)],
    )
    seen = first_seen(world.store, np.array([1, 2, 3, 4]))
    assert seen.tolist() == [T0 + 5 * SEC, T0 + 1 * SEC, T0 + 9 * SEC, NEVER]


def test_every_grouping_labels_each_user_once(tmp_path: Path) -> None:
    catalogue = catalogue_of(tmp_path / "catalog.sqlite", [UserRecord(1, 60, "M", "retired")])
    at = T0 + 10 * DAY_NS
    groups = user_groups(catalogue, np.array([1, 2]), np.array([T0, at - DAY_NS]), at)
    assert {g: v.tolist() for g, v in groups.items()} == {
        "age_group": ["55+", "unknown"],
        "gender": ["M", "unknown"],
        "occupation": ["retired", "unknown"],
        "tenure": ["returning", "new"],
    }


@given(
    st.lists(st.integers(-(30 * DAY_NS), 30 * DAY_NS), max_size=40),
    st.integers(0, 10**9).map(lambda x: T0 + x),
    st.floats(0.5, 30),
)
def test_tenure_of_many_users_agrees_with_the_reference(
    offsets: list[int], at: int, days: float
) -> None:
    first = np.array([at + o for o in offsets], dtype=np.int64)
    fast = tenure_groups(first, at, days).tolist()
    assert fast == [reference.tenure(int(f), at, days) for f in first]
    assert fast == [tenure_label(int(f), at, days) for f in first]


@given(st.lists(st.integers(-3, 120), max_size=50))
def test_age_bands_of_many_users_agree_with_one_at_a_time(ages: list[int]) -> None:
    catalogue = Catalogue(
        user_ids=np.arange(len(ages), dtype=np.int64),
        user_age=np.array(ages, dtype=np.int16),
        user_gender=np.zeros(len(ages), np.int8),
        user_occupation=np.full(len(ages), -1, np.int8),
        movie_ids=np.array([], dtype=object),
        movie_genres=np.array([], np.int64),
        movie_year=np.array([], np.int16),
        movie_runtime=np.array([], np.int32),
    )
    groups = demographic_groups(catalogue, np.arange(len(ages)))
    assert groups["age_group"].tolist() == [age_label(a) for a in ages]
