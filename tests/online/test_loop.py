"""The feedback loop's signature on a store with known concentration, and the Gini
coefficient against its definition."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from movierec.online.loop import gini, loop_report, top_share
from movierec.store.events import EventStore
from tests.online.handmade import DAY_NS, T0, commit, session, write_recommendations, write_watch


def reference_gini(counts: list[int]) -> float:
    """Gini the slow, obvious way: the mean absolute difference of every pair over twice
    the mean, on the sorted list."""
    values = sorted(counts)
    n, total = len(values), sum(values)
    if n == 0 or total == 0:
        return 0.0
    differences = sum(abs(a - b) for a in values for b in values)
    return differences / (2 * n * n * (total / n))


def test_the_day_the_lists_narrow_shows_in_gini_top_share_and_coverage(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "store")
    day2 = T0 + DAY_NS
    write_recommendations(
        store,
        1,
        [
            (T0, 1, 200, ["a+2000", "b+2000"]),
            (T0 + 10, 2, 200, ["a+2000", "b+2000"]),
            (T0 + 20, 3, 0, []),  # a failed call recommended nothing
            *[(day2 + i, i, 200, ["a+2000"]) for i in range(4)],
        ],
    )
    watches = [
        *session(1, "a+2000", T0, 3),
        *session(2, "b+2000", T0, 3),
        *session(3, "c+2000", T0, 3),
        *session(4, "d+2000", T0, 3),
        *[row for user in (1, 2, 3) for row in session(user, "a+2000", day2 + DAY_NS // 2, 2)],
    ]
    write_watch(store, 1, watches)
    commit(store, 1)
    report = loop_report(store.root)
    assert json.loads(json.dumps(report)) == report  # JSON-ready: plain types only
    assert report["catalogue"] == 4
    first, second = report["days"]
    assert first["day"] == "2025-01-01" and second["day"] == "2025-01-02"
    # Day 1: a and b twice each of four movies; every movie watched once.
    assert first["recommended"] == {
        "movies": 2,
        "total": 4,
        "gini": 0.5,
        "top1_share": 0.5,
        "lists": 2,
        "coverage": 0.5,
    }
    assert first["watched"] == {"movies": 4, "total": 4, "gini": 0.0, "top1_share": 0.25}
    # Day 2: one movie only, in the lists and on the screens: (n - 1) / n.
    assert second["recommended"]["gini"] == 0.75 and second["recommended"]["coverage"] == 0.25
    assert second["recommended"]["top1_share"] == 1.0
    assert second["watched"]["gini"] == 0.75
    assert report["latest"] == second
    assert report["trend"] == {"recommended_gini": 0.25, "watched_gini": 0.75, "coverage": -0.25}


def test_an_empty_store_has_no_days(tmp_path: Path) -> None:
    report = loop_report(tmp_path / "store")
    assert report["days"] == [] and report["latest"] is None and report["catalogue"] == 0


def test_top_share_takes_at_least_one_movie_and_one_percent_of_many() -> None:
    assert top_share(np.array([5, 3, 2])) == 0.5
    assert top_share(np.array([1] * 200)) == 0.01  # 2 of 200 movies, 2 of 200 counts
    assert top_share(np.array([0, 0])) == 0.0


counts = st.lists(st.integers(0, 1000), min_size=1, max_size=60)


@given(counts)
def test_gini_matches_the_mean_absolute_difference(values: list[int]) -> None:
    assert math.isclose(gini(np.array(values)), reference_gini(values), abs_tol=1e-9)


@given(st.integers(1, 500), st.integers(1, 10_000))
def test_gini_of_equal_counts_is_zero(n: int, count: int) -> None:
    assert math.isclose(gini(np.full(n, count)), 0.0, abs_tol=1e-9)


@given(st.integers(1, 300), st.integers(1, 10_000))
def test_gini_of_one_movie_only_approaches_one(n: int, count: int) -> None:
    values = np.zeros(n, dtype=np.int64)
    values[n // 2] = count
    assert math.isclose(gini(values), (n - 1) / n, abs_tol=1e-9)
    assert math.isclose(reference_gini(values.tolist()), (n - 1) / n, abs_tol=1e-9)


def test_gini_of_one_movie_in_a_large_catalogue_is_nearly_one() -> None:
    values = np.zeros(100_000, dtype=np.int64)
    values[7] = 3
    assert math.isclose(gini(values), 1 - 1e-5, abs_tol=1e-12)


@given(counts, st.randoms(use_true_random=False))
def test_gini_is_invariant_under_permutation(values: list[int], rng: random.Random) -> None:
    shuffled = list(values)
    rng.shuffle(shuffled)
    assert math.isclose(gini(np.array(values)), gini(np.array(shuffled)), abs_tol=1e-12)
