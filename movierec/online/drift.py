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

Every indicator carries its threshold and a `drifted` flag; a day with too few events for
an indicator gives it no value (and never a flag), so a quiet night does not page anyone.
Per-batch checks during ingestion live in movierec/quality/drift.py; this compares days
with the window a model was trained on, which ingestion does not know about.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np

from movierec.quality.drift import DriftThresholds
from movierec.quality.drift import _tvd as tvd
from movierec.registry.versions import Registry
from movierec.store.events import EventStore
from movierec.times import SECOND_NS, iso

# Minutes-per-session bins (left edges): fixed, so days and windows compare bin by bin.
WATCH_BINS = (1, 2, 5, 10, 20, 40, 60, 90, 120, 180)
_QUALITY = DriftThresholds()


@dataclass(frozen=True, slots=True)
class DriftLimits:
    """Thresholds of the indicators (a value above its threshold is drift)."""

    # A growing site always brings newcomers; a fifth of the day's users is a change of mix.
    new_user_share: float = 0.2
    # Events weigh heavy users more; newcomers watch less, so a lower bar.
    new_user_event_share: float = 0.1
    # JS divergence in bits (0 same, 1 disjoint): 0.1 is a clearly different mix.
    movie_mix_js: float = 0.1
    unseen_movie_share: float = 0.05
    rating_tvd: float = _QUALITY.rating_tvd  # the same bar as ingestion's per-batch check
    watch_length_js: float = 0.05
    min_users: int = 20  # a day with fewer active users is not judged on user mix
    min_sessions: int = 20
    min_ratings: int = 20


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
        _window_tables(con, window["from_ns"], window["to_ns"])
        base = _Facts.read(con, rating_scale)
        for day in _days_after(con):
            facts = _Facts.read(con, rating_scale, day)
            report["days"].append(_compare(day, facts, base, limits))
    if report["days"]:
        report["latest"] = report["days"][-1]["indicators"]
    report["drifted"] = sorted(n for n, i in report["latest"].items() if i["drifted"])
    return report


def _window_tables(con: duckdb.DuckDBPyConnection, start: int | None, end: int) -> None:
    # The bounds written once, into temporary views every later query reads.
    def inside(column: str) -> str:
        lower = "TRUE" if start is None else f"{column} >= make_timestamp_ns({int(start)})"
        return f"{lower} AND {column} < make_timestamp_ns({int(end)})"

    def after(column: str) -> str:
        # The day holding the window's end counts only what follows the end.
        return f"{column} >= make_timestamp_ns({int(end)})"

    for kind, column in (("watch", "time"), ("rate", "time"), ("sessions", "start_time")):
        con.execute(f"CREATE TEMP VIEW w_{kind} AS SELECT * FROM {kind} WHERE {inside(column)}")
        con.execute(f"CREATE TEMP VIEW a_{kind} AS SELECT * FROM {kind} WHERE {after(column)}")
    con.execute(
        "CREATE TEMP TABLE seen_users AS SELECT DISTINCT user_id FROM "
        "(SELECT user_id FROM w_watch UNION ALL SELECT user_id FROM w_rate)"
    )
    con.execute(
        "CREATE TEMP TABLE seen_movies AS SELECT DISTINCT CAST(movie_id AS VARCHAR) AS movie_id "
        "FROM (SELECT movie_id FROM w_watch UNION ALL SELECT movie_id FROM w_rate)"
    )


def _days_after(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.sql(
        "SELECT DISTINCT CAST(CAST(time AS DATE) AS VARCHAR) AS d FROM "
        "(SELECT time FROM a_watch UNION ALL SELECT time FROM a_rate) ORDER BY d"
    ).fetchall()
    return [r[0] for r in rows]


@dataclass
class _Facts:
    users: int
    new_users: int
    events: int
    new_user_events: int
    movies: dict[str, int]  # watch sessions by movie
    unseen_sessions: int
    ratings: np.ndarray
    minutes: np.ndarray

    @classmethod
    def read(cls, con: duckdb.DuckDBPyConnection, scale: int, day: str | None = None) -> _Facts:
        if day is None:
            watch, rate, sessions = "w_watch", "w_rate", "w_sessions"
        else:
            on = f"CAST(time AS DATE) = DATE '{day}'"
            watch = f"(SELECT * FROM a_watch WHERE {on})"
            rate = f"(SELECT * FROM a_rate WHERE {on})"
            sessions = f"(SELECT * FROM a_sessions WHERE {on.replace('time', 'start_time')})"
        users, new_users, events, new_events = con.sql(
            f"""SELECT count(DISTINCT user_id),
                   count(DISTINCT user_id) FILTER (WHERE NOT seen),
                   count(*), count(*) FILTER (WHERE NOT seen)
            FROM (SELECT user_id, user_id IN (SELECT user_id FROM seen_users) AS seen
                  FROM (SELECT user_id FROM {watch} UNION ALL SELECT user_id FROM {rate}))"""
        ).fetchall()[0]
        movies = dict(
            con.sql(
                f"SELECT CAST(movie_id AS VARCHAR), count(*) FROM {sessions} GROUP BY 1"
            ).fetchall()
        )
        unseen = con.sql(
            f"SELECT count(*) FROM {sessions} WHERE CAST(movie_id AS VARCHAR) "
            "NOT IN (SELECT movie_id FROM seen_movies)"
        ).fetchall()[0][0]
        stars = np.array(
            [r[0] for r in con.sql(f"SELECT rating FROM {rate}").fetchall()], dtype=np.int64
        )
        ratings = np.bincount(np.clip(stars, 1, scale) - 1, minlength=scale)[:scale]
        minutes = np.array(
            [r[0] for r in con.sql(f"SELECT minutes_watched FROM {sessions}").fetchall()],
            dtype=np.int64,
        )
        return cls(users, new_users, events, new_events, movies, unseen, ratings, minutes)


def _compare(day: str, facts: _Facts, base: _Facts, limits: DriftLimits) -> dict[str, Any]:
    sessions = len(facts.minutes)
    names = sorted(set(facts.movies) | set(base.movies))
    mix = js_divergence(
        np.array([facts.movies.get(n, 0) for n in names]),
        np.array([base.movies.get(n, 0) for n in names]),
    )
    enough_users = facts.users >= limits.min_users
    enough_sessions = sessions >= limits.min_sessions and len(base.minutes) > 0
    enough_ratings = facts.ratings.sum() >= limits.min_ratings and base.ratings.sum() > 0
    values = {
        "new_user_share": (
            facts.new_users / max(facts.users, 1),
            limits.new_user_share,
            enough_users,
        ),
        "new_user_event_share": (
            facts.new_user_events / max(facts.events, 1),
            limits.new_user_event_share,
            enough_users,
        ),
        "movie_mix_js": (mix, limits.movie_mix_js, enough_sessions),
        "unseen_movie_share": (
            facts.unseen_sessions / max(sessions, 1),
            limits.unseen_movie_share,
            enough_sessions,
        ),
        "rating_tvd": (tvd(facts.ratings, base.ratings), limits.rating_tvd, enough_ratings),
        "watch_length_js": (
            js_divergence(watch_histogram(facts.minutes), watch_histogram(base.minutes)),
            limits.watch_length_js,
            enough_sessions,
        ),
    }
    indicators = {
        name: {
            "value": round(float(value), 6) if judged else None,
            "threshold": threshold,
            "drifted": bool(judged and value > threshold),
        }
        for name, (value, threshold, judged) in values.items()
    }
    counts = {
        "users": facts.users,
        "new_users": facts.new_users,
        "events": facts.events,
        "sessions": sessions,
        "ratings": int(facts.ratings.sum()),
    }
    return {"day": day, **counts, "indicators": indicators}
