"""Slow, obviously correct versions of the audit's figures: one user, request or movie at a
time, plain loops over dicts, written from the definitions in the modules' docstrings
(movierec/audit/groups.py, fairness.py, exposure.py). Tests hold the vectorised figures
to them; nothing in the product calls them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import date, timedelta
from typing import Any

Z95 = 1.959963984540054
DAY_NS = 86_400 * 10**9


def tenure(first_seen_ns: int, at_ns: int, new_user_days: float) -> str:
    """New when the first event came less than `new_user_days` before `at_ns`."""
    return "new" if at_ns - first_seen_ns < new_user_days * DAY_NS else "returning"


def ratio_estimate(units: Sequence[tuple[float, float]]) -> tuple[float | None, float | None]:
    """(sum of nums / sum of dens, the upper end of its 95% interval) over (num, den) units;
    the interval from the spread of the units' residuals num - value x den."""
    total_num = sum(num for num, _ in units)
    total_den = sum(den for _, den in units)
    if total_den <= 0:
        return None, None
    value = total_num / total_den
    if len(units) < 2:
        return value, None
    squares = 0.0
    for num, den in units:
        squares += (num - value * den) ** 2
    n = len(units)
    se = math.sqrt(squares * n / (n - 1)) / total_den
    return value, value + Z95 * se


def judge(
    units_by_group: Mapping[str, Sequence[tuple[float, float]]],
    overall: float | None,
    floor: float,
    min_users: int,
) -> dict[str, dict[str, Any]]:
    """Every group's value, ratio to overall, eligibility and breach."""
    out: dict[str, dict[str, Any]] = {}
    for label, units in units_by_group.items():
        value, upper = ratio_estimate(units)
        ratio = ratio_upper = None
        if overall and value is not None:
            ratio = value / overall
            if upper is not None:
                ratio_upper = upper / overall
        eligible = len(units) >= min_users
        breach = False
        if eligible and ratio is not None and ratio < floor:
            breach = ratio_upper is not None and ratio_upper < 1.0
        out[label] = {
            "users": len(units),
            "value": value,
            "upper": upper,
            "ratio": ratio,
            "ratio_upper": ratio_upper,
            "eligible": eligible,
            "breach": breach,
        }
    return out


def offline_groups(
    per_user: Sequence[Mapping[str, float]],
    labels: Sequence[Mapping[str, str]],
    figures: Sequence[str],
    floor: float,
    min_users: int,
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """{grouping: {group: {figure: judged}}} from each user's figures (NaN: no held-out
    relevance, left out) and each user's label under every grouping."""
    out: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for figure in figures:
        defined = [i for i, user in enumerate(per_user) if not math.isnan(user[figure])]
        values = [per_user[i][figure] for i in defined]
        overall = sum(values) / len(values) if values else None
        for grouping in labels[0] if labels else {}:
            units: dict[str, list[tuple[float, float]]] = {}
            for i in defined:
                units.setdefault(labels[i][grouping], []).append((per_user[i][figure], 1.0))
            for label, cell in judge(units, overall, floor, min_users).items():
                out.setdefault(grouping, {}).setdefault(label, {})[figure] = cell
    return out


def conversions(
    requests: Sequence[tuple[int, int, int, Sequence[str]]],
    watches: Sequence[tuple[int, int, str]],
    window_us: int,
) -> dict[int, bool]:
    """For each (id, t_us, user, listed movies) request: whether the same user watched a
    listed movie in (t, t + window]."""
    followed: dict[int, bool] = {}
    for request_id, t, user, items in requests:
        followed[request_id] = False
        for w_t, w_user, movie in watches:
            if w_user == user and t < w_t <= t + window_us and movie in items:
                followed[request_id] = True
                break
    return followed


def online_groups(
    answers: Sequence[tuple[int, bool, Mapping[str, str]]],
    floor: float,
    min_users: int,
) -> dict[str, dict[str, dict[str, Any]]]:
    """{grouping: {group: judged}} from (user, followed, labels) answers; each (user, group)
    is one unit of (conversions, answers)."""
    judged = [followed for _, followed, _ in answers]
    overall = sum(judged) / len(judged) if judged else None
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for grouping in answers[0][2] if answers else {}:
        tallies: dict[tuple[int, str], list[float]] = {}
        for user, followed, labels in answers:
            tally = tallies.setdefault((user, labels[grouping]), [0.0, 0.0])
            tally[0] += 1.0 if followed else 0.0
            tally[1] += 1.0
        units: dict[str, list[tuple[float, float]]] = {}
        for (_, label), (num, den) in tallies.items():
            units.setdefault(label, []).append((num, den))
        out[grouping] = judge(units, overall, floor, min_users)
    return out


def head(sessions: Mapping[str, int], share: float) -> set[str]:
    """The most-watched movies, most first and ties by id, until they hold `share`."""
    total = sum(sessions.values())
    chosen: set[str] = set()
    running = 0
    if total == 0:
        return chosen
    for movie in sorted(sessions, key=lambda m: (-sessions[m], m)):
        chosen.add(movie)
        running += sessions[movie]
        if running >= share * total:
            break
    return chosen


def release_class(released: date | None, year: int, end: date, new_days: int) -> str:
    """ "new", "old" or "unknown" for a movie's release date (or year alone, 0 unknown)."""
    since = end - timedelta(days=new_days)
    if released is not None:
        return "new" if released > since else "old"
    if year > 0:
        if date(year, 12, 31) <= since:
            return "old"
        if date(year, 1, 1) > since:
            return "new"
    return "unknown"


def exposure_shares(
    slots: Mapping[str, int],
    sessions: Mapping[str, int],
    classes: Mapping[str, str],
    head_share: float,
) -> dict[str, float | None]:
    """The long tail's and new releases' shares of slots and of sessions (new releases
    among the movies whose release is known)."""
    movies = set(slots) | set(sessions)
    top = head({m: sessions.get(m, 0) for m in movies}, head_share)
    tail_slots = tail_sessions = all_slots = all_sessions = 0
    new_slots = new_sessions = known_slots = known_sessions = 0
    for movie in movies:
        shown, watched = slots.get(movie, 0), sessions.get(movie, 0)
        all_slots += shown
        all_sessions += watched
        if movie not in top:
            tail_slots += shown
            tail_sessions += watched
        if classes.get(movie, "unknown") != "unknown":
            known_slots += shown
            known_sessions += watched
            if classes[movie] == "new":
                new_slots += shown
                new_sessions += watched

    def share(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    return {
        "long_tail_recommended": share(tail_slots, all_slots),
        "long_tail_watched": share(tail_sessions, all_sessions),
        "new_release_recommended": share(new_slots, known_slots),
        "new_release_watched": share(new_sessions, known_sessions),
    }
