"""Checks that need more than the line itself: timestamps from the future.

A line is from the future only relative to when it arrived (the broker's timestamp, or
the reader's clock for a file): never relative to its neighbours. A replay of an old log,
a backfill, or a site that was quiet for a week are all normal and pass whole, whatever
the batch size; a line dated beyond its arrival by more than the tolerance (clock skew,
a time zone slip) is a lie and is kept aside with its reason.
"""

from __future__ import annotations

import numpy as np

DAY_NS = 86_400 * 1_000_000_000
# The default tolerated lead of a line's time over its arrival: a site's clock may be
# off, or log local time, by up to a day (time zones span 26 hours).
FUTURE_TOLERANCE_NS = DAY_NS


def future_timestamps(
    times: np.ndarray,
    accepted: np.ndarray,
    arrival_ns: np.ndarray | int,
    tolerance_ns: int = FUTURE_TOLERANCE_NS,
) -> np.ndarray:
    """Mask of accepted lines dated more than tolerance after they arrived."""
    if tolerance_ns < 0:
        raise ValueError(f"the future tolerance must not be negative, not {tolerance_ns}")
    return accepted & (times > np.asarray(arrival_ns, dtype=np.int64) + np.int64(tolerance_ns))
