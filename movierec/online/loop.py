"""The feedback loop's signature: does what we recommend, and then what users watch,
concentrate on fewer and fewer movies, day after day?

A recommender trained on what users watched, whose lists then shape what they watch, can
narrow itself down to the popular head. Per day this measures, over the catalogue:

    recommended   movie ids in the status-200 answers the site logged (the `items` column)
    watched       watch sessions (the store's `sessions` view)

each as a Gini coefficient of the counts per movie (0: every movie alike; (n-1)/n: one
movie has everything) and the share of the top 1% of movies; and the catalogue coverage
of recommendations (share of the catalogue recommended at least once that day). Rising
Gini and falling coverage together are the signature of a closing loop.

The catalogue is every movie the store has seen (watched, rated or recommended): movies
never seen anywhere count as zeros for every day, so days compare on the same population.
"""

from __future__ import annotations

import contextlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from movierec.store.events import EventStore

TOP_SHARE = 0.01  # the "top 1%" of movies


def gini(counts: np.ndarray) -> float:
    """Gini coefficient of non-negative counts (0 when all are equal or all are zero)."""
    x = np.sort(np.asarray(counts, dtype=float))
    n, total = len(x), float(x.sum())
    if n == 0 or total <= 0:
        return 0.0
    # The sorted-rank form of the mean absolute difference: O(n log n), not O(n^2).
    ranks = np.arange(1, n + 1)
    return float(2 * (ranks * x).sum() / (n * total) - (n + 1) / n)


def top_share(counts: np.ndarray, share: float = TOP_SHARE) -> float:
    """Share of the total held by the largest ceil(share * n) counts (at least one)."""
    x = np.sort(np.asarray(counts, dtype=float))[::-1]
    total = float(x.sum())
    if total <= 0:
        return 0.0
    k = max(1, math.ceil(share * len(x)))
    return float(x[:k].sum() / total)


def concentration(counts: dict[str, int], catalogue: int) -> dict[str, Any]:
    """Gini and top-1% share over a catalogue of `catalogue` movies (absent ones are 0)."""
    values = np.zeros(max(catalogue, len(counts)), dtype=np.int64)
    values[: len(counts)] = list(counts.values())
    return {
        "movies": len(counts),
        "total": int(values.sum()),
        "gini": round(gini(values), 6),
        "top1_share": round(top_share(values), 6),
    }


_RECOMMENDED = """
SELECT CAST(CAST(time AS DATE) AS VARCHAR) AS day, item, count(*) AS n
FROM (SELECT time, unnest(items) AS item FROM recommendation WHERE status = 200)
GROUP BY ALL
"""
_WATCHED = """
SELECT CAST(CAST(start_time AS DATE) AS VARCHAR) AS day, CAST(movie_id AS VARCHAR), count(*)
FROM sessions GROUP BY ALL
"""
_LISTS = """
SELECT CAST(CAST(time AS DATE) AS VARCHAR), count(*) FROM recommendation WHERE status = 200
GROUP BY ALL
"""
_CATALOGUE = """
SELECT count(DISTINCT movie) FROM (
    SELECT CAST(movie_id AS VARCHAR) AS movie FROM watch
    UNION ALL SELECT CAST(movie_id AS VARCHAR) FROM rate
    UNION ALL SELECT unnest(items) FROM recommendation WHERE status = 200
)
"""


def loop_report(store: Path) -> dict[str, Any]:
    """Per day: concentration of what was recommended and of what was watched."""
    with contextlib.closing(EventStore(store).connect()) as con:
        catalogue = int(con.sql(_CATALOGUE).fetchall()[0][0])
        recommended = _by_day(con.sql(_RECOMMENDED).fetchall())
        watched = _by_day(con.sql(_WATCHED).fetchall())
        lists = dict(con.sql(_LISTS).fetchall())
    days = []
    for day in sorted(set(recommended) | set(watched)):
        shown = recommended.get(day, {})
        rec = concentration(shown, catalogue)
        rec["lists"] = int(lists.get(day, 0))
        rec["coverage"] = round(len(shown) / catalogue, 6) if catalogue else 0.0
        days.append(
            {
                "day": day,
                "recommended": rec,
                "watched": concentration(watched.get(day, {}), catalogue),
            }
        )
    return {
        "catalogue": catalogue,
        "top_share": TOP_SHARE,
        "days": days,
        "latest": days[-1] if days else None,
        "trend": _trend(days),
    }


def _by_day(rows: list[tuple[str, str, int]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for day, movie, count in rows:
        out.setdefault(day, {})[movie] = int(count)
    return out


def _trend(days: list[dict[str, Any]]) -> dict[str, float | None]:
    """Change from the first day to the last of each Gini and of coverage (None: one day)."""
    if len(days) < 2:
        return {"recommended_gini": None, "watched_gini": None, "coverage": None}
    first, last = days[0], days[-1]
    return {
        "recommended_gini": round(last["recommended"]["gini"] - first["recommended"]["gini"], 6),
        "watched_gini": round(last["watched"]["gini"] - first["watched"]["gini"], 6),
        "coverage": round(last["recommended"]["coverage"] - first["recommended"]["coverage"], 6),
    }
