from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from movierec.quality.checks import DAY_NS, FUTURE_HORIZON_NS, future_timestamps

T0 = 1_735_689_600 * 10**9  # 2025-01-01


def test_lines_days_ahead_of_the_stream_are_from_the_future() -> None:
    minute = 60 * 10**9
    times = T0 + np.arange(1000) * minute
    times[[10, 500]] = T0 + 5 * DAY_NS
    accepted = np.ones(1000, dtype=bool)
    future, clock = future_timestamps(times, accepted, None)
    assert np.flatnonzero(future).tolist() == [10, 500]
    assert clock == times[-1]


def test_late_lines_are_kept_and_the_clock_carries_over_batches() -> None:
    times = np.array([T0, T0 - DAY_NS * 10, T0 + 60, T0 + 2 * DAY_NS])
    future, clock = future_timestamps(times, np.ones(4, dtype=bool), T0)
    assert future.tolist() == [False, False, False, True]
    future, _ = future_timestamps(np.array([T0 + DAY_NS]), np.ones(1, dtype=bool), clock)
    assert future.tolist() == [False]


def test_a_real_jump_in_time_moves_the_clock() -> None:
    # The site was silent for a week: the whole batch lies beyond the old clock.
    times = T0 + 7 * DAY_NS + np.arange(100) * 10**9
    future, clock = future_timestamps(times, np.ones(100, dtype=bool), T0)
    assert not future.any() and clock == times[-1]


def test_rejected_lines_neither_count_nor_move_the_clock() -> None:
    times = np.array([T0, T0 + 30 * DAY_NS, T0 + 1])
    future, clock = future_timestamps(times, np.array([True, False, True]), T0)
    assert not future.any() and clock == T0 + 1


@given(st.lists(st.integers(0, FUTURE_HORIZON_NS), min_size=1, max_size=200))
def test_an_ordered_stream_never_has_future_lines(gaps: list[int]) -> None:
    # No step between neighbours exceeds the horizon, however far the stream runs in all.
    times = T0 + np.cumsum(np.array(gaps, dtype=np.int64))
    future, clock = future_timestamps(times, np.ones(len(times), dtype=bool), None)
    assert not future.any()
    assert clock == times[-1]


@given(
    st.lists(st.integers(0, FUTURE_HORIZON_NS), min_size=2, max_size=200),
    st.data(),
    st.integers(1, 30 * DAY_NS),
)
def test_a_line_beyond_the_horizon_of_its_ordered_neighbours_is_flagged_alone(
    gaps: list[int], data: st.DataObject, lead: int
) -> None:
    times = T0 + np.cumsum(np.array(gaps, dtype=np.int64))
    # In the later half, past the median that starts the clock, so the clock has reached
    # the line before it.
    at = data.draw(st.integers((len(times) + 1) // 2 + 1, len(times)))
    lie = times[at - 1] + FUTURE_HORIZON_NS + lead
    stream = np.insert(times, at, lie)
    future, clock = future_timestamps(stream, np.ones(len(stream), dtype=bool), None)
    assert np.flatnonzero(future).tolist() == [at]
    assert clock == times[-1]
