"""The sanity checks read lists as the service serves them: the vectorised defects equal a
plain per-list reading, and known defects are found where they were put."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec.ids import is_movie_id
from movierec.models.base import LIST_LENGTH
from movierec.models.kinds import fit
from movierec.registry.versions import Registry
from movierec.release.checks import coverage, full_lists, list_defects, served, snapshot_build
from movierec.serving.snapshot import DEPTH, Snapshot, build
from movierec.store.events import EventStore
from movierec.times import iso
from tests.support.ratings import steady_store


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """A popularity model's snapshot over 60 users and 40 movies (no segments)."""
    from movierec.features.interactions import time_range, training_data

    root = tmp_path_factory.mktemp("checks")
    store: EventStore = steady_store(str(root / "store"))
    last = time_range(store)[1]
    fitted = fit("popularity", {}, training_data(store, last + 1), 0)
    registry = Registry(root / "models")
    version = registry.add(fitted, {"data": {"to": iso(last)}})
    return build(registry, version, None)


def reference(snapshot: Snapshot, row: np.ndarray, user: int | None) -> set[str]:
    """The defects of one list, read the obvious way."""
    items = [i.decode() for i in snapshot.items]
    shown = [int(i) for i in row if i >= 0][:LIST_LENGTH]
    watched = set() if user is None else {items[i] for i in snapshot.history(user).tolist()}
    ids = [items[i] if i < len(items) else None for i in shown]
    found = set()
    if len(shown) < min(LIST_LENGTH, len(items) - len(watched)):
        found.add("short")
    if any(i is None or not is_movie_id(i) for i in ids):
        found.add("invalid")
    known = [i for i in ids if i is not None]
    if len(set(known)) < len(known):
        found.add("repeated")
    if watched & set(known):
        found.add("watched")
    return found


def found(defects: dict[str, np.ndarray], at: int) -> set[str]:
    return {name for name, flags in defects.items() if flags[at]}


def test_the_built_snapshot_serves_full_lists(snapshot: Snapshot) -> None:
    check = full_lists(snapshot)
    assert check.passed and check.value == 0 and check.threshold == 0
    assert f"0 of {len(snapshot.user_ids) + 1} served lists" in check.detail


def test_known_defects_are_found_where_they_were_put(snapshot: Snapshot) -> None:
    lists = snapshot.lists.copy()
    lists[0, 5:] = -1  # five movies, with many more unwatched
    lists[1, 3] = lists[1, 0]  # a movie twice
    lists[2, 0] = snapshot.history(int(snapshot.user_ids[2]))[0]  # one they already rated
    lists[3, :] = np.roll(lists[3], 1)  # reordered, still a full list
    lists[3, 0] = -1  # padding first: the service skips it
    broken = dataclasses.replace(snapshot, lists=lists)
    defects = list_defects(broken)
    assert [found(defects, i) for i in range(4)] == [{"short"}, {"repeated"}, {"watched"}, set()]
    check = full_lists(broken)
    assert not check.passed and check.value == 3
    first = ", ".join(str(int(u)) for u in snapshot.user_ids[:3])
    assert f"first: {first}" in check.detail


def test_a_short_fallback_list_fails_too(snapshot: Snapshot) -> None:
    popular = snapshot.popular.copy()
    popular[LIST_LENGTH - 1 :] = -1
    check = full_lists(dataclasses.replace(snapshot, popular=popular))
    assert not check.passed and "first: fallback" in check.detail


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_defects_equal_the_plain_reading(snapshot: Snapshot, data: st.DataObject) -> None:
    n_items = len(snapshot.items)
    rows = data.draw(st.lists(st.integers(0, len(snapshot.user_ids) - 1), min_size=1, max_size=4))
    entry = st.integers(-1, n_items + 1)  # -1 padding, real items, past the items
    lists = snapshot.lists.copy()
    for row in rows:
        lists[row] = data.draw(st.lists(entry, min_size=DEPTH, max_size=DEPTH))
    changed = dataclasses.replace(snapshot, lists=lists)
    defects = list_defects(changed)
    blocked = list_defects(changed, block=7)  # read in blocks: the same answer
    assert all(np.array_equal(defects[name], blocked[name]) for name in defects)
    for row in {*rows, 0}:
        assert found(defects, row) == reference(changed, lists[row], int(snapshot.user_ids[row]))
    fallback = len(snapshot.user_ids)
    assert found(defects, fallback) == reference(changed, snapshot.popular, None)


def test_served_takes_the_first_twenty_that_are_not_padding() -> None:
    row = np.array([[-1, 4, -1, *range(10, 40), -1]])
    assert served(row).tolist() == [[4, *range(10, 29)]]
    assert served(np.array([[-1, 3, -1]])).tolist() == [[3, -1, -1]]


def test_coverage_and_build_checks_state_value_threshold_and_outcome() -> None:
    assert coverage(0.3, 0.5, 0.5).passed and not coverage(0.2, 0.5, 0.5).passed
    assert coverage(0.2, 0.5, 0.5).threshold == 0.25
    assert not coverage(float("nan"), 0.5, 0.5).passed
    assert snapshot_build(1.0, 300.0, None).passed
    slow = snapshot_build(301.0, 300.0, None)
    assert not slow.passed and slow.value == 301.0 and slow.threshold == 300.0
    assert not snapshot_build(0.1, 300.0, "ValueError: bad").passed


def test_checks_round_trip_as_json() -> None:
    check = coverage(0.3, 0.5, 0.5)
    assert check.to_json() == {
        "name": "coverage",
        "value": 0.3,
        "threshold": 0.25,
        "passed": True,
        "detail": check.detail,
    }
