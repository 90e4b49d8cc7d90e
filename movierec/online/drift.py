"""Input drift: each day since the production model's training window, against that window.

The model learned from the events of its training window (provenance.json's `data.from` and
`data.to`, the span training read). What it serves is only as good as today's traffic
resembles that window, so each later day is compared with it on four things:

    user mix       share of the day's active users, and of its events, from users the
                   window never saw (the model has no vector for them: fallbacks)
    movie mix      Jensen–Shannon divergence of the movie shares of watch sessions, and the
                   share of sessions on movies the window never saw
    ratings        total variation distance of the star histogram
    watch length   Jensen–Shannon divergence of the minutes-per-session histogram

Every indicator carries its value, its threshold, whether the day had enough data to be
`judged` and a `drifted` flag; a day with too few events for an indicator is shown but not
judged (never flagged), so a quiet night does not page anyone. `latest` is the last
complete day (the log's newest day is still being written), or the only day there is.
Per-batch checks during ingestion live in movierec/quality/drift.py; this compares days
with the window a model was trained on, which ingestion does not know about.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from movierec.quality.drift import DriftThresholds
from movierec.quality.drift import total_variation as tvd
from movierec.registry.versions import Registry
from movierec.store.events import EventStore
from movierec.times import SECOND_NS, iso

# Minutes-per-session bins (left edges): fixed, so days and windows compare bin by bin.
WATCH_BINS = (1, 2, 5, 10, 20, 40, 60, 90, 120, 180)
_QUALITY = DriftThresholds()


@dataclass(frozen=True, slots=True)
class DriftLimits:
    """Thresholds of the indicators (a value above its threshold is drift)."""

    # Calibrated on a steady simulated site (5,000 users, 500 movies, 1.5M lines, users
    # joining all along), whose full days gave: newcomers 14-17% of users and 12-14% of
    # events, movie-mix JS 0.05 (2,000 sessions: mostly sampling noise), unseen movies 1%,
    # rating TVD 0.06-0.09, watch-length JS 0.002-0.004. Each bar sits well above that.
    new_user_share: float = 0.25
    new_user_event_share: float = 0.25
    # JS divergence in bits (0 same, 1 disjoint). Sampling alone inflates it on small days
    # (0.19 on a day of 287 sessions of that same site), hence also min_sessions.
    movie_mix_js: float = 0.15
    unseen_movie_share: float = 0.05
    rating_tvd: float = _QUALITY.rating_tvd  # the same bar as ingestion's per-batch check
    watch_length_js: float = 0.05
    min_users: int = 100  # a day with fewer active users is not judged on user mix
    min_sessions: int = 500  # nor with fewer sessions on movie mix and watch length
    min_ratings: int = 50


def js_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Jensen–Shannon divergence (base 2, in [0, 1]) of two histograms of equal length."""
    p = np.asarray(p, dtype=float)
    q = np.asarray(q, dtype=float)
    if p.sum() <= 0 or q.sum() <= 0:
        return 0.0
    p, q = p / p.sum(), q / q.sum()
    m = (p + q) / 2

    def kl(a: np.ndarray) -> float:
        keep = a > 0  # 0 log 0 = 0; m > 0 wherever a > 0
        return float((a[keep] * np.log2(a[keep] / m[keep])).sum())

    return max(0.0, min(1.0, (kl(p) + kl(q)) / 2))


def watch_histogram(minutes: np.ndarray) -> np.ndarray:
    """Sessions per WATCH_BINS bin (the last bin open-ended)."""
    index = np.digitize(np.asarray(minutes), WATCH_BINS) - 1
    return np.bincount(index[index >= 0], minlength=len(WATCH_BINS))[: len(WATCH_BINS)]


def training_window(models: Path) -> dict[str, Any] | None:
    """The production version's training window: {"version", "from_ns", "to_ns", "source"}.

    `source` is "provenance" when provenance.json names the data's span, else "created":
    the version's creation time ends the window and it starts with the store's data."""
    registry = Registry(models)
    version = registry.production()
    if version is None:
        return None
    data = registry.provenance(version).get("data") or {}
    if data.get("from") and data.get("to"):
        # Provenance keeps whole seconds and training read every event up to `to`, so
        # the window ends one second after it.
        return {
            "version": version,
            "from_ns": _ns(data["from"]),
            "to_ns": _ns(data["to"]) + SECOND_NS,
            "source": "provenance",
        }
    created = next(v["created"] for v in registry.read()["versions"] if v["version"] == version)
    stamp = datetime.strptime(created, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    end = int(stamp.timestamp()) * SECOND_NS
    return {"version": version, "from_ns": None, "to_ns": end, "source": "created"}


def _ns(text: str) -> int:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp()) * SECOND_NS


def drift_report(
    store: Path, models: Path, limits: DriftLimits | None = None, rating_scale: int = 5
) -> dict[str, Any]:
    """Per day after the production model's training window, each indicator against it."""
    limits = limits or DriftLimits()
    window = training_window(models)
    report: dict[str, Any] = {"thresholds": asdict(limits), "days": [], "latest": {}}
    if window is None:
        report["window"] = None
        report["note"] = "no production version: nothing to compare with"
        return report
    report["window"] = {
        "version": window["version"],
        "from": iso(window["from_ns"]) if window["from_ns"] is not None else None,
        "to": iso(window["to_ns"]),
        "source": window["source"],
    }
    with contextlib.closing(EventStore(store).connect()) as con:
        base, days = _read(con, window["from_ns"], window["to_ns"], rating_scale)
        last = con.sql(
            "SELECT CAST(max(t) AS DATE) FROM (SELECT max(time) AS t FROM watch "
            "UNION ALL SELECT max(time) FROM rate)"
        ).fetchall()[0][0]
    for day in sorted(days):
        # The log's last day is still being written: sessions in it are cut short.
        complete = last is not None and day < str(last)
        report["days"].append(_compare(day, days[day], base, limits, complete))
    done = [d for d in report["days"] if d["complete"]] or report["days"]
    if done:
        report["latest_day"] = done[-1]["day"]
        report["latest"] = done[-1]["indicators"]
    report["drifted"] = sorted(n for n, i in report["latest"].items() if i["drifted"])
    return report


@dataclass
class _Facts:
    """What one day (or the window) holds, in the few counts the indicators need."""

    scale: int
    users: int = 0
    new_users: int = 0
    events: int = 0
    new_user_events: int = 0
    movies: dict[str, int] = field(default_factory=dict)  # watch sessions by movie
    unseen_sessions: int = 0
    ratings: np.ndarray = field(init=False)
    lengths: np.ndarray = field(init=False)  # sessions per WATCH_BINS bin

    def __post_init__(self) -> None:
        self.ratings = np.zeros(self.scale, dtype=np.int64)
        self.lengths = np.zeros(len(WATCH_BINS), dtype=np.int64)

    @property
    def sessions(self) -> int:
        return int(self.lengths.sum())


def _read(
    con: duckdb.DuckDBPyConnection, start: int | None, end: int, scale: int
) -> tuple[_Facts, dict[str, _Facts]]:
    """The window's facts and each later day's, from a handful of grouped queries: each
    scans the store once whatever the number of days (a month of a large site would
    otherwise be read once per day and indicator)."""

    def inside(column: str) -> str:
        lower = "TRUE" if start is None else f"{column} >= make_timestamp_ns({int(start)})"
        return f"{lower} AND {column} < make_timestamp_ns({int(end)})"

    def after(column: str) -> str:
        # The day holding the window's end counts only what follows the end.
        return f"{column} >= make_timestamp_ns({int(end)})"

    # The sessions view is a window function over every watch: computed once, kept small.
    con.execute(
        "CREATE TEMP TABLE s_all AS SELECT CAST(movie_id AS VARCHAR) AS movie_id, "
        "start_time, minutes_watched FROM sessions"
    )
    con.execute(
        "CREATE TEMP TABLE seen_users AS SELECT DISTINCT user_id FROM (SELECT user_id FROM "
        f"watch WHERE {inside('time')} UNION ALL SELECT user_id FROM rate WHERE {inside('time')})"
    )
    seen_movies = {
        r[0]
        for r in con.sql(
            "SELECT DISTINCT CAST(movie_id AS VARCHAR) FROM (SELECT movie_id FROM watch WHERE "
            f"{inside('time')} UNION ALL SELECT movie_id FROM rate WHERE {inside('time')})"
        ).fetchall()
    }
    base = _Facts(scale)
    days: dict[str, _Facts] = {}

    def facts(day: str) -> _Facts:
        return days.setdefault(day, _Facts(scale))

    day_of = "CAST(CAST({} AS DATE) AS VARCHAR)"
    for day, users, new_users, events, new_events in con.sql(
        f"""WITH e AS (
            SELECT {day_of.format("time")} AS d, user_id FROM watch WHERE {after("time")}
            UNION ALL
            SELECT {day_of.format("time")}, user_id FROM rate WHERE {after("time")})
        SELECT d, count(DISTINCT e.user_id),
               count(DISTINCT e.user_id) FILTER (WHERE s.user_id IS NULL),
               count(*), count(*) FILTER (WHERE s.user_id IS NULL)
        FROM e LEFT JOIN seen_users s ON e.user_id = s.user_id GROUP BY d"""
    ).fetchall():
        f = facts(day)
        f.users, f.new_users, f.events, f.new_user_events = users, new_users, events, new_events
    for scope, where, key in (
        ("window", inside("start_time"), "''"),
        ("days", after("start_time"), day_of.format("start_time")),
    ):
        for day, movie, count in con.sql(
            f"SELECT {key}, movie_id, count(*) FROM s_all WHERE {where} GROUP BY ALL"
        ).fetchall():
            f = base if scope == "window" else facts(day)
            f.movies[movie] = count
            if movie not in seen_movies:
                f.unseen_sessions += count
        for day, minutes, count in con.sql(
            f"SELECT {key}, minutes_watched, count(*) FROM s_all WHERE {where} GROUP BY ALL"
        ).fetchall():
            f = base if scope == "window" else facts(day)
            f.lengths += watch_histogram(np.array([minutes])) * count
    for scope, where, key in (
        ("window", inside("time"), "''"),
        ("days", after("time"), day_of.format("time")),
    ):
        for day, stars, count in con.sql(
            f"SELECT {key}, rating, count(*) FROM rate WHERE {where} GROUP BY ALL"
        ).fetchall():
            f = base if scope == "window" else facts(day)
            f.ratings[min(max(int(stars), 1), scale) - 1] += count
    return base, days


def _compare(
    day: str, facts: _Facts, base: _Facts, limits: DriftLimits, complete: bool
) -> dict[str, Any]:
    sessions = facts.sessions
    names = sorted(set(facts.movies) | set(base.movies))
    mix = js_divergence(
        np.array([facts.movies.get(n, 0) for n in names]),
        np.array([base.movies.get(n, 0) for n in names]),
    )
    # (value, or None without anything to compare; threshold; enough data to judge)
    has_sessions = sessions > 0 and base.sessions > 0
    has_ratings = facts.ratings.sum() > 0 and base.ratings.sum() > 0
    enough_users = facts.users >= limits.min_users
    enough_sessions = sessions >= limits.min_sessions
    enough_ratings = facts.ratings.sum() >= limits.min_ratings
    values: dict[str, tuple[float | None, float, bool]] = {
        "new_user_share": (
            facts.new_users / facts.users if facts.users else None,
            limits.new_user_share,
            enough_users,
        ),
        "new_user_event_share": (
            facts.new_user_events / facts.events if facts.events else None,
            limits.new_user_event_share,
            enough_users,
        ),
        "movie_mix_js": (mix if has_sessions else None, limits.movie_mix_js, enough_sessions),
        "unseen_movie_share": (
            facts.unseen_sessions / sessions if sessions else None,
            limits.unseen_movie_share,
            enough_sessions,
        ),
        "rating_tvd": (
            tvd(facts.ratings, base.ratings) if has_ratings else None,
            limits.rating_tvd,
            enough_ratings,
        ),
        "watch_length_js": (
            js_divergence(facts.lengths, base.lengths) if has_sessions else None,
            limits.watch_length_js,
            enough_sessions,
        ),
    }
    indicators = {}
    for name, (value, threshold, enough) in values.items():
        judged = bool(enough) and value is not None
        indicators[name] = {
            "value": None if value is None else round(float(value), 6),
            "threshold": threshold,
            "judged": judged,
            "drifted": bool(judged and value is not None and value > threshold),
        }
    counts = {
        "users": facts.users,
        "new_users": facts.new_users,
        "events": facts.events,
        "sessions": sessions,
        "ratings": int(facts.ratings.sum()),
    }
    return {"day": day, "complete": complete, **counts, "indicators": indicators}
