"""The few pieces of PromQL's arithmetic the built-in evaluator needs, done as Prometheus
does them, so a rule gives the same answer with or without a Prometheus server:

- `increase` of a counter over a window, a drop taken as a reset (the process restarted and
  counts again from zero), so a restart never makes a rate negative;
- `histogram_quantile` over bucket increases, interpolating linearly inside the bucket,
  the +Inf bucket answered with the highest finite bound;
- division by zero as IEEE floats give it (0/0 is NaN: no answer; x/0 is ±Inf), and
  operations on an empty result staying empty (None here).

Prometheus also extrapolates a rate to the window's edges; the evaluator does not. Every
rule compares rates of series scraped together (a share, a ratio of shares, a quantile),
where the same factor would stand above and below the line.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Sequence

Point = tuple[float, float]  # (time, value)


def increase(points: Sequence[Point]) -> float | None:
    """How much a counter grew over time-ordered points; None with fewer than two."""
    if len(points) < 2:
        return None
    total = 0.0
    for (_, before), (_, after) in itertools.pairwise(points):
        # A drop is a reset: the counter started again from zero and reached `after`.
        total += after - before if after >= before else after
    return total


def total(values: Iterable[float | None]) -> float | None:
    """PromQL's sum(): None (an empty result) when no series had a value."""
    present = [v for v in values if v is not None]
    return math.fsum(present) if present else None


def divide(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    if b == 0:
        return math.nan if a == 0 or math.isnan(a) else math.copysign(math.inf, a)
    return a / b


def subtract(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def clamp_min(a: float | None, floor: float) -> float | None:
    if a is None or math.isnan(a):
        return a  # as Go's math.Max: NaN stays NaN
    return max(a, floor)


def bucket_bound(le: str) -> float:
    return math.inf if le in ("+Inf", "Inf", "inf") else float(le)


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus's bucketQuantile over cumulative counts by upper bound."""
    if not buckets:
        return None
    if q < 0:
        return -math.inf
    if q > 1:
        return math.inf
    bounds = sorted(buckets)
    if not math.isinf(bounds[-1]) or len(bounds) < 2:
        return math.nan
    counts = [buckets[b] for b in bounds]
    for i in range(1, len(counts)):  # as ensureMonotonic: float noise can break the order
        counts[i] = max(counts[i], counts[i - 1])
    observations = counts[-1]
    if observations == 0:
        return math.nan
    rank = q * observations
    b = next(i for i, count in enumerate(counts) if count >= rank)
    if b == len(bounds) - 1:
        return bounds[-2]
    if b == 0 and bounds[0] <= 0:
        return bounds[0]
    start, end, count = 0.0, bounds[b], counts[b]
    if b > 0:
        start = bounds[b - 1]
        count -= counts[b - 1]
        rank -= counts[b - 1]
    return start + (end - start) * (rank / count)
