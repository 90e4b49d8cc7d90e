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

`loop_report_by_arm` gives the same figures for each experiment arm's users (its users
from the service's answer log), so a mitigation run as an arm (exploration slots,
serving/explore.py) can be seen to damp the loop, or not; `conversion_by_day` gives each
arm's conversion per day from the online report, what the mitigation costs.
"""

from __future__ import annotations

import contextlib
import math
from collections import Counter
from collections.abc import Collection
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from movierec.online.answers import read_new
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
    days = _days(catalogue, recommended, watched, lists)
    return {
        "catalogue": catalogue,
        "top_share": TOP_SHARE,
        "days": days,
        "latest": days[-1] if days else None,
        "trend": _trend(days),
    }


def _days(
    catalogue: int,
    recommended: dict[str, dict[str, int]],
    watched: dict[str, dict[str, int]],
    lists: dict[str, int],
) -> list[dict[str, Any]]:
    """Each day's figures, from its counts per movie of what was recommended and watched."""
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
    return days


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


# ---- per experiment arm -----------------------------------------------------------------
# Each arm's users are those the service answered in that arm (the answer log's `arm`); a
# day's figures of an arm are those of its users' lines that day: what the site logged
# recommending them, and their watch sessions. Days before the experiment give its arms'
# users' baseline (the "before" of a before/after). Arms are compared on the same
# catalogue; an arm with fewer users has sparser counts, which alone raises its Gini, so
# compare arms of equal shares.
_RECOMMENDED_BY_ARM = """
SELECT CAST(CAST(time AS DATE) AS VARCHAR) AS day, a.arm, item, count(*) AS n
FROM (SELECT time, user_id, unnest(items) AS item FROM recommendation WHERE status = 200) r
JOIN arm_users a USING (user_id)
GROUP BY ALL
"""
_WATCHED_BY_ARM = """
SELECT CAST(CAST(start_time AS DATE) AS VARCHAR) AS day, a.arm, CAST(movie_id AS VARCHAR),
       count(*)
FROM sessions s JOIN arm_users a USING (user_id)
GROUP BY ALL
"""
_LISTS_BY_ARM = """
SELECT CAST(CAST(time AS DATE) AS VARCHAR), a.arm, count(*)
FROM recommendation r JOIN arm_users a USING (user_id)
WHERE status = 200
GROUP BY ALL
"""


def arms_of_users(
    answers: Path, experiments: Collection[str] | None = None
) -> tuple[dict[int, str], dict[str, int]]:
    """Each user's arm, from the answer log's records of the given experiments (all when
    None); a user answered in more than one arm is left out (and counted), since their
    watches belong to neither alone. Also the counts behind it."""
    table, _, bad = read_new(answers, {})
    users = table.column("user_id").to_pylist()
    exps = table.column("experiment").to_pylist()
    arms = table.column("arm").to_pylist()
    chosen: dict[int, set[str]] = {}
    for user, exp, arm in zip(users, exps, arms, strict=True):
        if arm is None or exp is None or (experiments is not None and exp not in experiments):
            continue
        chosen.setdefault(int(user), set()).add(arm)
    several = sum(1 for found in chosen.values() if len(found) > 1)
    mapping = {user: next(iter(found)) for user, found in chosen.items() if len(found) == 1}
    counts = {
        "answer_records": table.num_rows,
        "unreadable_records": bad,
        "users_in_arms": len(mapping),
        "users_in_several_arms": several,
    }
    return mapping, counts


def loop_report_by_arm(
    store: Path, answers: Path, experiments: Collection[str] | None = None
) -> dict[str, Any]:
    """loop_report's per-day figures for each experiment arm's users (`answers`: the
    service's answer log; `experiments`: the ids whose arms count, all when None)."""
    mapping, counts = arms_of_users(answers, experiments)
    warnings = []
    if not answers.is_dir():
        warnings.append(f"no answer log in {answers}: no user has an arm")
    elif not mapping:
        warnings.append("no answer record names an experiment arm: nothing to split by arm")
    if counts["users_in_several_arms"]:
        warnings.append(
            f"{counts['users_in_several_arms']} users were answered in more than one arm and "
            "are left out (name the experiments to count, or keep one split)"
        )
    table = pa.table(
        {
            "user_id": pa.array(list(mapping), pa.int64()),
            "arm": pa.array(list(mapping.values()), pa.string()),
        }
    )
    with contextlib.closing(EventStore(store).connect()) as con:
        con.register("arm_users", table)
        catalogue = int(con.sql(_CATALOGUE).fetchall()[0][0])
        recommended = _by_arm_and_day(con.sql(_RECOMMENDED_BY_ARM).fetchall())
        watched = _by_arm_and_day(con.sql(_WATCHED_BY_ARM).fetchall())
        lists: dict[str, dict[str, int]] = {}
        for day, arm, n in con.sql(_LISTS_BY_ARM).fetchall():
            lists.setdefault(arm, {})[day] = int(n)
    users = Counter(mapping.values())
    by_arm = {}
    for arm in sorted(set(users) | set(recommended) | set(watched)):
        days = _days(catalogue, recommended.get(arm, {}), watched.get(arm, {}), lists.get(arm, {}))
        by_arm[arm] = {
            "users": users.get(arm, 0),
            "days": days,
            "latest": days[-1] if days else None,
            "trend": _trend(days),
        }
    return {
        "catalogue": catalogue,
        "top_share": TOP_SHARE,
        "experiments": sorted(experiments) if experiments is not None else None,
        **counts,
        "arms": by_arm,
        "warnings": warnings,
    }


def _by_arm_and_day(rows: list[tuple[str, str, str, int]]) -> dict[str, dict[str, dict[str, int]]]:
    out: dict[str, dict[str, dict[str, int]]] = {}
    for day, arm, movie, count in rows:
        out.setdefault(arm, {}).setdefault(day, {})[movie] = int(count)
    return out


def conversion_by_day(online: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """Each arm's conversion per day of the log, from an online report's hours
    (movierec/online/figures.py: online_report), summed over experiments by arm name."""
    sums: dict[str, dict[str, list[int]]] = {}
    for hour in online["hours"]:
        if hour["arm"] is None or hour["hour"] is None:
            continue
        day = sums.setdefault(hour["arm"], {}).setdefault(hour["hour"][:10], [0, 0, 0])
        day[0] += int(hour["requests"])
        day[1] += int(hour["judged"])
        day[2] += int(hour["followed"])
    return {
        arm: [
            {
                "day": day,
                "requests": r,
                "judged": judged,
                "followed": followed,
                "conversion": round(followed / judged, 6) if judged else None,
            }
            for day, (r, judged, followed) in sorted(days.items())
        ]
        for arm, days in sorted(sums.items())
    }
