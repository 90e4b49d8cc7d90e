"""Slow, obviously correct reference implementations of the ranking metrics.

One user at a time, plain Python loops, written from the textbook definitions. They exist so
the tests can check the vectorised `movierec.evaluation.metrics` against something a reader
can verify by eye; they follow the same conventions (see that module's docstring):

* only the first k slots count; padding (negative) and repeated items are misses that keep
  their slot;
* a user without relevant items has undefined (NaN) metrics;
* recall and AP are normalised by min(|relevant|, k); precision by k.

`relevant` is a mapping item -> grade for one user; binary metrics use only its keys.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

NAN = float("nan")


def relevant_per_user(
    indptr: Sequence[int], indices: Sequence[int], grades: Sequence[float] | None = None
) -> list[dict[int, float]]:
    """CSR rows as one item -> grade dict per user; an item listed twice keeps its best grade."""
    users: list[dict[int, float]] = []
    for user in range(len(indptr) - 1):
        relevant: dict[int, float] = {}
        for at in range(indptr[user], indptr[user + 1]):
            grade = 1.0 if grades is None else float(grades[at])
            relevant[int(indices[at])] = max(grade, relevant.get(int(indices[at]), grade))
        users.append(relevant)
    return users


def slots(recommended: Sequence[int], k: int) -> list[int | None]:
    """The first k slots of a list, with padding and repeats replaced by None."""
    seen: set[int] = set()
    out: list[int | None] = []
    for item in list(recommended)[:k]:
        if item < 0 or item in seen:
            out.append(None)
        else:
            seen.add(item)
            out.append(item)
    return out


def hits(recommended: Sequence[int], relevant: Mapping[int, float], k: int) -> list[bool]:
    return [item is not None and item in relevant for item in slots(recommended, k)]


def dcg(gains: Sequence[float]) -> float:
    """Discounted cumulative gain: gain at rank r (1-based) divided by log2(r + 1)."""
    total = 0.0
    for rank, gain in enumerate(gains, start=1):
        total += gain / math.log2(rank + 1)
    return total


def ndcg(
    recommended: Sequence[int], relevant: Mapping[int, float], k: int, graded: bool = False
) -> float:
    if not relevant:
        return NAN
    gains = []
    for item in slots(recommended, k):
        if item is not None and item in relevant:
            gains.append(relevant[item] if graded else 1.0)
        else:
            gains.append(0.0)
    best = sorted((relevant[item] if graded else 1.0 for item in relevant), reverse=True)
    ideal = dcg(best[:k])
    if ideal == 0:
        return NAN
    return dcg(gains) / ideal


def recall(
    recommended: Sequence[int],
    relevant: Mapping[int, float],
    k: int,
    denominator: str = "capped",
) -> float:
    if not relevant:
        return NAN
    found = sum(hits(recommended, relevant, k))
    if denominator == "capped":
        return found / min(len(relevant), k)
    return found / len(relevant)


def precision(recommended: Sequence[int], relevant: Mapping[int, float], k: int) -> float:
    if not relevant:
        return NAN
    return sum(hits(recommended, relevant, k)) / k


def average_precision(recommended: Sequence[int], relevant: Mapping[int, float], k: int) -> float:
    """Sum over hit ranks r of precision@r, divided by min(|relevant|, k)."""
    if not relevant:
        return NAN
    total = 0.0
    found = 0
    for rank, is_hit in enumerate(hits(recommended, relevant, k), start=1):
        if is_hit:
            found += 1
            total += found / rank
    return total / min(len(relevant), k)


def hit_rate(recommended: Sequence[int], relevant: Mapping[int, float], k: int) -> float:
    if not relevant:
        return NAN
    return 1.0 if any(hits(recommended, relevant, k)) else 0.0


def reciprocal_rank(recommended: Sequence[int], relevant: Mapping[int, float], k: int) -> float:
    if not relevant:
        return NAN
    for rank, is_hit in enumerate(hits(recommended, relevant, k), start=1):
        if is_hit:
            return 1.0 / rank
    return 0.0


def mean_defined(values: Sequence[float]) -> float:
    """Mean over the defined (non-NaN) values, i.e. over users with relevant items."""
    defined = [v for v in values if not math.isnan(v)]
    return sum(defined) / len(defined) if defined else NAN


def recommendation_counts(
    lists: Sequence[Sequence[int]], n_items: int, k: int | None = None
) -> list[int]:
    """How many lists each item 0..n_items-1 appears in."""
    counts = [0] * n_items
    for recommended in lists:
        shown = recommended if k is None else recommended[:k]
        for item in {item for item in shown if item >= 0}:
            counts[item] += 1
    return counts


def coverage(lists: Sequence[Sequence[int]], n_items: int, k: int | None = None) -> float:
    shown = recommendation_counts(lists, n_items, k)
    return sum(1 for c in shown if c > 0) / n_items if n_items else NAN


def mean_popularity(
    lists: Sequence[Sequence[int]], popularity: Sequence[float], k: int | None = None
) -> float:
    """Mean popularity over every distinct (user, item) pair recommended."""
    values = []
    for recommended in lists:
        shown = recommended if k is None else recommended[:k]
        for item in {item for item in shown if item >= 0}:
            values.append(popularity[item])
    return sum(values) / len(values) if values else NAN


def gini(counts: Sequence[float]) -> float:
    """Mean absolute difference over all ordered pairs, halved and divided by the mean:
    sum_i sum_j |x_i - x_j| / (2 n^2 mean)."""
    n = len(counts)
    if n == 0:
        return NAN
    mean = sum(counts) / n
    if mean == 0:
        return 0.0
    spread = 0.0
    for a in counts:
        for b in counts:
            spread += abs(a - b)
    return spread / (2 * n * n * mean)
