"""Checks that need more than one line: timestamps from the future, by the stream's own
clock (the site's log is time-ordered, so a line far ahead of its neighbours is a lie)."""

from __future__ import annotations

import numpy as np
from numba import njit

DAY_NS = 86_400 * 1_000_000_000
FUTURE_HORIZON_NS = DAY_NS  # tolerated lead of a line over the stream's clock


@njit(cache=True, nogil=True)
def _scan(
    times: np.ndarray, accepted: np.ndarray, clock: np.int64, horizon: np.int64
) -> tuple[np.ndarray, np.int64]:
    """Flag accepted lines more than horizon ahead of the clock; the clock follows the
    latest line that was not flagged. Sequential by nature, hence compiled."""
    future = np.zeros(times.shape[0], dtype=np.bool_)
    for i in range(times.shape[0]):
        if not accepted[i]:
            continue
        if times[i] > clock + horizon:
            future[i] = True
        elif times[i] > clock:
            clock = times[i]
    return future, clock


def future_timestamps(
    times: np.ndarray, accepted: np.ndarray, clock: int | None, horizon: int = FUTURE_HORIZON_NS
) -> tuple[np.ndarray, int | None]:
    """(mask of lines from the future, the stream clock after them).

    With no clock yet, or when most of a batch lies beyond it (the site really was silent
    for a while), the batch's median time sets the clock: a few lying lines cannot move
    a median."""
    if not accepted.any():
        return np.zeros(len(times), dtype=bool), clock
    # The middle time itself, exactly: np.median goes through float64, whose steps are
    # 256 ns at today's epoch nanoseconds, and a clock rounded past every real line
    # would move the horizon with it.
    kept = times[accepted]
    middle = len(kept) // 2
    median = int(np.partition(kept, middle)[middle])
    if clock is None or median > clock + horizon:
        clock = median
    future, after = _scan(times, accepted, np.int64(clock), np.int64(horizon))
    return future, int(after)
