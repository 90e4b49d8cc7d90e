"""A group's figure against everyone's: the interval of a ratio estimate, textbook for a
mean, and against the slow reference for any units."""

from __future__ import annotations

import math
import statistics

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec.audit import reference
from movierec.audit.gaps import judge_groups, ratio_estimates
from movierec.online.stats import Z95


def test_the_interval_of_a_mean_is_the_textbook_one() -> None:
    values = [0.1, 0.4, 0.35, 0.9, 0.0, 0.2]
    est = ratio_estimates(np.array(["x"] * 6, dtype=object), np.array(values), np.ones(6))["x"]
    textbook = statistics.mean(values) + Z95 * statistics.stdev(values) / math.sqrt(6)
    assert est["value"] == pytest.approx(statistics.mean(values))
    assert est["upper"] == pytest.approx(textbook)
    one = ratio_estimates(np.array(["x"], dtype=object), np.ones(1), np.ones(1))["x"]
    assert one["value"] == 1.0 and one["upper"] is None  # one unit: no spread to judge by


def test_a_group_below_the_floor_for_certain_breaches_and_one_nobody_is_in_is_shown() -> None:
    labels = np.array(["a"] * 3 + ["b"] * 3, dtype=object)
    num = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0])
    judged = judge_groups("f", labels, num, np.ones(6), 0.5, ("a", "b", "c"), 0.8, 3)
    assert judged["a"]["ratio"] == 0.0 and judged["a"]["ratio_upper"] == 0.0
    assert judged["a"]["breach"] and not judged["b"]["breach"]
    assert judged["c"] == {
        "users": 0, "num": 0.0, "den": 0.0, "f": None, "upper": None, "ratio": None,
        "ratio_upper": None, "eligible": False, "breach": False,
    }  # fmt: skip
    # Without an overall figure to compare with, nothing has a ratio or breaches.
    nothing = judge_groups("f", labels, num, np.ones(6), None, ("a", "b"), 0.8, 3)
    assert all(g["ratio"] is None and not g["breach"] for g in nothing.values())


@given(
    st.lists(
        st.tuples(st.sampled_from("ab"), st.integers(0, 9), st.integers(0, 9)),
        min_size=1,
        max_size=40,
    )
)
def test_ratio_estimates_agree_with_the_reference(units: list[tuple[str, int, int]]) -> None:
    # Conversions are at most the answers; a unit without answers counts as a user.
    units = [(label, min(num, den), den) for label, num, den in units]
    fast = ratio_estimates(
        np.array([u[0] for u in units], dtype=object),
        np.array([u[1] for u in units], dtype=np.float64),
        np.array([u[2] for u in units], dtype=np.float64),
    )
    for label in {u[0] for u in units}:
        mine = [(float(n), float(d)) for g, n, d in units if g == label]
        value, upper = reference.ratio_estimate(mine)
        assert fast[label]["units"] == len(mine)
        for got, want in ((fast[label]["value"], value), (fast[label]["upper"], upper)):
            assert got == (None if want is None else pytest.approx(want, abs=1e-9))
