"""Shilling campaigns seen in the store: bursts of new accounts on one movie.

A shilling campaign opens accounts to push a movie: many accounts whose first event is
recent arrive on the same movie within hours. The detector follows each movie's fresh
arrivals, the (account, movie) pairs whose first event comes while the account is
fresh (its first event on the site less than `fresh_days` before), and at each one:

    accounts  fresh arrivals on the movie in the trailing `window_hours`
    expected  what the movie's baseline predicts for such a window: the larger of its
              own fresh arrivals an hour over the `baseline_days` before the window and
              the site's fresh-to-proven ratio times the movie's proven arrivals in the
              window (a new release draws newcomers too), both times `peak_factor`
              (the evening peak and some slack), never under `floor_per_hour`
    score     -log10 P(Poisson(expected) >= accounts); abnormal when accounts >=
              `min_accounts` and score >= `min_score`

A run of abnormal arrivals of one movie, each less than a window after the last, is
one detection: `first_seen` the earliest fresh arrival in the window that first crossed,
`detected_at` the arrival that crossed it (what a detector following the store knew
then), `accounts` the distinct fresh accounts arriving from first_seen to the run's
last abnormal arrival, `events` their events on the movie (all of them, also later
ones), `score` the run's highest. Detections sharing most of their accounts are one
campaign: its target is the movie most of them arrived on, the others what the accounts
watched to look like people. Accounts first seen within `fresh_days` of the store's first
event are never fresh: they were on the site before the store began.

Detection delay (detected_at - the campaign's start), with the defaults: a campaign of 50
accounts arriving over 6 hours on a long-tail movie (movierec_sim/attacks.py: the target
watched at a random place among 3 popular movies) is detected within 3 hours of simulated
time (bench/bench_shilling.py, a 2,000-user site, five seeds: 0.9 to 2.9 hours, mean 2.0;
tests/audit/test_attacks.py holds a 500-user site to 3 hours). On clean sites (those
five, two months of 2,000 users, 8 days of 20,000) it detected nothing. What it cannot
see: `LIMITS`.

Cost: one query over the store (each account's first event, each pair's first event,
keeping only fresh pairs), a second for the arrivals on the few movies with at least
min_accounts fresh arrivals, then binary searches: a month of a 2,000-user site (2
million lines) in 0.3 to 0.6 s, 8 days of a 20,000-user site in 1.2 s. Run on a schedule
it could be incremental: it needs only each account's first event and the last window +
baseline days of arrivals.
"""

from __future__ import annotations

import contextlib
import logging
import time
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from movierec.audit.bursts import (
    ShillingDetectionSettings,
    by_movie_and_time,
    episodes,
    group_campaigns,
    window_scores,
)
from movierec.models.base import LIST_LENGTH, Recommender, TrainingData
from movierec.store.events import EventStore
from movierec.times import DAY_NS, iso

__all__ = [
    "LIMITS",
    "ShillingDetectionSettings",
    "detect_shilling",
    "movie_exposure",
    "shilling_report",
]

log = logging.getLogger("movierec.audit.attacks")

LIMITS = (
    "the baseline is the movie's own: a campaign on a movie newcomers already flock to "
    "must outnumber them",
    "accounts aged past fresh_days before they push, or fewer than min_accounts a window, "
    "are not seen",
    "the store cannot tell a campaign from a real crowd of newcomers (a mention in the "
    "press): a detection is a reason to look, not proof",
)

_EVENTS = """
    SELECT user_id, CAST(movie_id AS VARCHAR) AS movie_id, time FROM watch
    WHERE time < make_timestamp_ns($until)
    UNION ALL
    SELECT user_id, CAST(movie_id AS VARCHAR) AS movie_id, time FROM rate
    WHERE time < make_timestamp_ns($until)
"""
# Each account's first event and each (account, movie)'s, over watch and rate lines; the
# fresh pairs, and how many pairs began since fresh_from at all (the site's ratio).
_PAIRS_SQL = f"""
CREATE TEMP TABLE pairs AS
WITH ev AS ({_EVENTS}),
firsts AS (SELECT user_id, min(time) AS first_time FROM ev GROUP BY user_id)
SELECT p.user_id, p.movie_id, p.arrival, p.events, f.first_time,
       f.first_time >= make_timestamp_ns($fresh_from)
           AND p.arrival < f.first_time + to_microseconds($fresh_us) AS fresh
FROM (SELECT user_id, movie_id, min(time) AS arrival, count(*) AS events
      FROM ev GROUP BY ALL) p
JOIN firsts f USING (user_id)
"""


def shilling_report(
    store: Path | str,
    settings: ShillingDetectionSettings | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> dict[str, Any]:
    """The shilling detections in the store at `store`, judged on its watch and rate
    events before `until_ns` (None: all of them), keeping those detected at or after
    `since_ns` (None: all)."""
    settings = settings or ShillingDetectionSettings()
    started = time.monotonic()
    report = detect_shilling(EventStore(store), settings, since_ns, until_ns)
    report["seconds"] = round(time.monotonic() - started, 3)
    for warning in report["warnings"]:
        log.warning("shilling: %s", warning)
    return report


def detect_shilling(
    store: EventStore,
    settings: ShillingDetectionSettings | None = None,
    since_ns: int | None = None,
    until_ns: int | None = None,
) -> dict[str, Any]:
    """shilling_report's figures, without the timing."""
    settings = settings or ShillingDetectionSettings()
    until = int(until_ns) if until_ns is not None else 2**62
    report: dict[str, Any] = {
        "parameters": settings.model_dump(),
        "limits": list(LIMITS),
        "judged": {"from": None, "to": None, "fresh_accounts": 0, "fresh_arrivals": 0},
        "detections": [],
        "campaigns": [],
        "warnings": [],
    }
    with contextlib.closing(store.connect()) as con:
        span = _span(con, until)
        if span is None:
            report["warnings"].append("the store holds no watch or rate events: nothing judged")
            return report
        fresh_ns = int(settings.fresh_days * DAY_NS)
        fresh_from = span[0] + fresh_ns
        con.execute(
            _PAIRS_SQL, {"until": until, "fresh_from": fresh_from, "fresh_us": fresh_ns // 1000}
        )
        fresh = _columns(
            con.execute(
                "SELECT user_id, movie_id, epoch_ns(arrival) AS arrival_ns, events, "
                "epoch_ns(first_time) AS first_ns FROM pairs WHERE fresh"
            ).fetchnumpy()
        )
        proven_pairs = con.execute(
            "SELECT count(*) FROM pairs WHERE NOT fresh AND arrival >= make_timestamp_ns($f)",
            {"f": fresh_from},
        ).fetchall()[0][0]
        movies, counts = np.unique(fresh["movie_id"].astype(str), return_counts=True)
        candidates = movies[counts >= settings.min_accounts]
        traffic = _columns(
            con.execute(
                "SELECT movie_id, epoch_ns(arrival) AS arrival_ns FROM pairs "
                "WHERE movie_id IN (SELECT unnest($m))",
                {"m": candidates.tolist()},
            ).fetchnumpy()
        )
    report["judged"] = {
        "from": iso(fresh_from),
        "to": iso(span[1]),
        "fresh_accounts": len(np.unique(fresh["user_id"])),
        "fresh_arrivals": len(fresh["user_id"]),
        "proven_arrivals": int(proven_pairs),
        "candidate_movies": len(candidates),
    }
    if span[1] <= fresh_from:
        report["warnings"].append(
            f"the store spans {(span[1] - span[0]) / DAY_NS:.1f} days, no more than "
            f"fresh_days ({settings.fresh_days}): every account predates it, nothing judged"
        )
        return report
    site_ratio = len(fresh["user_id"]) / max(int(proven_pairs), 1)
    # Only candidate movies can reach min_accounts in a window; the rest need no traffic.
    keep = np.isin(fresh["movie_id"].astype(str), candidates)
    fresh = by_movie_and_time({k: v[keep] for k, v in fresh.items()}, candidates)
    traffic = by_movie_and_time(traffic, candidates)
    scores = window_scores(fresh, traffic, fresh_from, site_ratio, settings)
    detections = episodes(fresh, scores, settings)
    if since_ns is not None:
        detections = [d for d in detections if d["detected_at_ns"] >= since_ns]
    report["judged"]["site_fresh_ratio"] = round(site_ratio, 6)
    report["detections"] = detections
    report["campaigns"] = group_campaigns(detections)
    return report


def movie_exposure(
    model: Recommender,
    train: TrainingData,
    movie_id: str,
    user_ids: np.ndarray,
    k: int = LIST_LENGTH,
) -> dict[str, Any]:
    """How often `model` shows `movie_id` to `user_ids`: the share of their top-k lists
    holding it, among those whose training data does not hold it already (a list never
    shows a user what they have; those users are left out, and counted). A movie the
    model does not know (`known` false) is in no list: its exposure is 0."""
    at = np.flatnonzero(model.item_ids.astype(str) == movie_id)
    users = np.asarray(user_ids, dtype=np.int64)
    if len(at) == 0:
        return {
            "movie_id": movie_id,
            "known": False,
            "k": k,
            "users": len(users),
            "users_with_movie": 0,
            "lists_with_movie": 0,
            "exposure": 0.0 if len(users) else None,
        }
    rows = train.user_rows(users)
    column = int(at[0])
    had = np.zeros(len(users), dtype=bool)
    known = rows >= 0
    had[known] = np.asarray(train.matrix[rows[known], column].todense()).ravel() > 0
    eligible = users[~had]
    lists = model.recommend(eligible, k) if len(eligible) else np.empty((0, k), np.int64)
    shown = int((lists == column).any(axis=1).sum())
    return {
        "movie_id": movie_id,
        "known": True,
        "k": k,
        "users": len(eligible),
        "users_with_movie": int(had.sum()),
        "lists_with_movie": shown,
        "exposure": round(shown / len(eligible), 6) if len(eligible) else None,
    }


def _span(con: duckdb.DuckDBPyConnection, until: int) -> tuple[int, int] | None:
    """(first, last) watch or rate event time in ns before until, None without any."""
    row = con.execute(
        f"SELECT epoch_ns(min(time)), epoch_ns(max(time)) FROM ({_EVENTS})", {"until": until}
    ).fetchall()[0]
    return None if row[0] is None else (int(row[0]), int(row[1]))


def _columns(found: dict[str, Any]) -> dict[str, np.ndarray]:
    kinds = {"user_id": np.int64, "arrival_ns": np.int64, "events": np.int64, "first_ns": np.int64}
    return {
        name: np.asarray(values, dtype=kinds.get(name, object)) for name, values in found.items()
    }
