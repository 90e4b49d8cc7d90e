"""Future timestamps are judged by arrival alone: never by neighbours or batch size."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec.quality.checks import DAY_NS, FUTURE_TOLERANCE_NS, future_timestamps

T0 = 1_735_689_600 * 10**9  # 2025-01-01
YEAR_NS = 365 * DAY_NS


def test_a_line_dated_beyond_its_arrival_by_more_than_the_tolerance_is_from_the_future() -> None:
    arrival = np.full(4, T0)
    times = np.array([T0 - YEAR_NS, T0, T0 + FUTURE_TOLERANCE_NS, T0 + YEAR_NS])
    future = future_timestamps(times, np.ones(4, dtype=bool), arrival)
    assert future.tolist() == [False, False, False, True]


def test_a_replay_with_quiet_weeks_passes_whole() -> None:
    """An old log read today: every line is long before its arrival, gaps or not."""
    gaps = np.array([0, 7, 7, 30, 1, 365]) * DAY_NS
    times = T0 + np.cumsum(gaps)
    future = future_timestamps(times, np.ones(len(times), dtype=bool), T0 + 2 * YEAR_NS)
    assert not future.any()


def test_rejected_lines_are_not_judged_again() -> None:
    times = np.array([T0, T0 + YEAR_NS, T0 + YEAR_NS])
    future = future_timestamps(times, np.array([True, False, True]), T0)
    assert future.tolist() == [False, False, True]


def test_the_tolerance_is_a_setting() -> None:
    times = np.array([T0 + 2 * 3600 * 10**9])
    accepted = np.ones(1, dtype=bool)
    assert future_timestamps(times, accepted, T0, tolerance_ns=3600 * 10**9).tolist() == [True]
    assert not future_timestamps(times, accepted, T0, tolerance_ns=3 * 3600 * 10**9).any()
    with pytest.raises(ValueError):
        future_timestamps(times, accepted, T0, tolerance_ns=-1)


@given(
    leads=st.lists(st.integers(-10 * YEAR_NS, 10 * YEAR_NS), min_size=1, max_size=300),
    cut=st.integers(1, 300),
)
def test_the_verdict_is_per_line_whatever_the_batches(leads: list[int], cut: int) -> None:
    """Split anywhere, the lines get the same verdict: lead over arrival > tolerance."""
    arrival = T0 + np.arange(len(leads), dtype=np.int64) * 10**9
    times = arrival + np.array(leads, dtype=np.int64)
    accepted = np.ones(len(leads), dtype=bool)
    whole = future_timestamps(times, accepted, arrival)
    parts = [
        future_timestamps(times[i : i + cut], accepted[i : i + cut], arrival[i : i + cut])
        for i in range(0, len(leads), cut)
    ]
    assert np.concatenate(parts).tolist() == whole.tolist()
    assert whole.tolist() == [lead > FUTURE_TOLERANCE_NS for lead in leads]
