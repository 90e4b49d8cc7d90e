"""Exposure of movies: do the long tail and new releases get a share of what we recommend
that is fair to the share of watching they get?

    recommended  movie ids in the status-200 answers the site logged (the `items` of the
                 store's recommendation view, one count per slot), as the feedback loop
                 counts them (movierec/online/loop.py)
    watched      watch sessions (the store's `sessions` view), per movie
    head         the most-watched movies that together make up HEAD_SHARE (80%) of watch
                 sessions, most-watched first (ties by id), down to and including the one
                 that reaches it; the long tail is every other movie, also those never
                 watched (the usual 80/20 head/tail cut of popularity-bias studies)
    new release  released less than NEW_RELEASE_DAYS before the data's end (its newest
                 event in the window); a date after the end counts as new (a premiere, or
                 a catalogue a little ahead of the log: certainly not old). Without a date,
                 the year decides when it can (a year that ended NEW_RELEASE_DAYS before
                 the end: old; one that began within them: new); otherwise, or for a movie
                 the catalogue does not know, its release is unknown, and the new-release
                 shares are of the slots and sessions of movies whose release is known (the
                 unknown share is reported, and warned about beyond 1%)

Each share of recommendations is set against its share of watching; the requirement is a
ratio of at least EXPOSURE_FLOOR. It is judged only with MIN_LISTS lists and MIN_SESSIONS
sessions of the category, below which a few users' habits would decide it.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import numpy as np

from movierec.catalog.reader import MovieReleases
from movierec.ids import find_in_sorted
from movierec.store.events import EventStore
from movierec.times import iso

HEAD_SHARE = 0.8
# A season: a movie is "new" for about three months after release, the span of its
# theatrical and first streaming window, after which it competes as catalogue.
NEW_RELEASE_DAYS = 90
# Half: a recommender may lean towards what is popular (that is where most of its
# accuracy is), but one that gives the tail less than half the attention users give it
# is narrowing what they can find, which the feedback loop then makes worse.
EXPOSURE_FLOOR = 0.5
MIN_LISTS = 100
MIN_SESSIONS = 30
NEW, OLD, UNKNOWN = "new", "old", "unknown"
_WARN_UNKNOWN_SHARE = 0.01


def head_mask(sessions: np.ndarray, movie_ids: np.ndarray, share: float = HEAD_SHARE) -> np.ndarray:
    """True for the head movies (see the module's docstring); no sessions, no head."""
    sessions = np.asarray(sessions, dtype=np.int64)
    total = int(sessions.sum())
    mask = np.zeros(len(sessions), dtype=bool)
    if total == 0:
        return mask
    order = np.lexsort((np.asarray(movie_ids, dtype=str), -sessions))
    cumulative = np.cumsum(sessions[order])
    # The first position whose running total reaches the share: it and all before it.
    last = int(np.searchsorted(cumulative, share * total, side="left"))
    mask[order[: last + 1]] = True
    return mask


def release_classes(
    movie_ids: np.ndarray,
    releases: MovieReleases,
    end_day: np.datetime64,
    new_days: int = NEW_RELEASE_DAYS,
) -> np.ndarray:
    """ "new", "old" or "unknown" per movie (see the module's docstring)."""
    ids = np.asarray(movie_ids, dtype=object)
    out = np.full(len(ids), UNKNOWN, dtype=object)
    order = np.argsort(releases.ids.astype(str), kind="stable")
    at, hit = find_in_sorted(releases.ids.astype(str)[order], ids.astype(str))
    date = np.full(len(ids), np.datetime64("NaT"), dtype="datetime64[D]")
    year = np.zeros(len(ids), dtype=np.int64)
    date[hit] = releases.date[order][at[hit]]
    year[hit] = releases.year[order][at[hit]]
    since = np.datetime64(end_day, "D") - np.timedelta64(new_days, "D")
    dated = ~np.isnat(date)
    out[dated] = np.where(date[dated] > since, NEW, OLD)
    by_year = ~dated & (year > 0)
    first = (year[by_year] - 1970).astype("datetime64[Y]").astype("datetime64[D]")
    last = (year[by_year] - 1969).astype("datetime64[Y]").astype("datetime64[D]") - 1
    out[by_year] = np.where(last <= since, OLD, np.where(first > since, NEW, UNKNOWN))
    return out


def exposure_figures(
    movie_ids: np.ndarray,
    slots: np.ndarray,
    sessions: np.ndarray,
    classes: np.ndarray,
    lists: int,
    head_share: float = HEAD_SHARE,
    floor: float = EXPOSURE_FLOOR,
) -> dict[str, Any]:
    """The long tail's and new releases' shares from per-movie counts (one row a movie)."""
    slots = np.asarray(slots, dtype=np.int64)
    sessions = np.asarray(sessions, dtype=np.int64)
    classes = np.asarray(classes, dtype=object)
    tail = ~head_mask(sessions, movie_ids, head_share)
    known = classes != UNKNOWN
    new = classes == NEW
    long_tail = _shares(slots, sessions, tail, np.ones(len(slots), dtype=bool), lists, floor)
    long_tail["movies"] = int(tail.sum())
    new_release = _shares(slots, sessions, new, known, lists, floor)
    new_release["movies"] = int(new.sum())
    new_release["unknown_recommended_share"] = _share(int(slots[~known].sum()), int(slots.sum()))
    new_release["unknown_watched_share"] = _share(int(sessions[~known].sum()), int(sessions.sum()))
    breaches = [
        {"figure": name, "ratio": part["ratio"], "floor": floor}
        for name, part in (("long_tail", long_tail), ("new_release", new_release))
        if part["breach"]
    ]
    return {
        "lists": lists,
        "slots": int(slots.sum()),
        "sessions": int(sessions.sum()),
        "movies": len(slots),
        "head_movies": int((~tail).sum()),
        "long_tail": long_tail,
        "new_release": new_release,
        "breaches": breaches,
        # None: neither share could be judged (too few lists or sessions)
        "passed": not breaches if long_tail["judged"] or new_release["judged"] else None,
    }


def _shares(
    slots: np.ndarray,
    sessions: np.ndarray,
    part: np.ndarray,
    among: np.ndarray,
    lists: int,
    floor: float,
) -> dict[str, Any]:
    recommended = _share(int(slots[part & among].sum()), int(slots[among].sum()))
    watched = _share(int(sessions[part & among].sum()), int(sessions[among].sum()))
    ratio = None
    if recommended is not None and watched:
        ratio = round(recommended / watched, 6)
    watched_sessions = int(sessions[part & among].sum())
    judged = ratio is not None and lists >= MIN_LISTS and watched_sessions >= MIN_SESSIONS
    return {
        "recommended_share": recommended,
        "watched_share": watched,
        "recommended_slots": int(slots[part & among].sum()),
        "watched_sessions": watched_sessions,
        "ratio": ratio,
        "judged": judged,
        "breach": bool(judged and ratio is not None and ratio < floor),
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


_SLOTS_SQL = """
SELECT item, count(*) FROM (
    SELECT unnest(items) AS item FROM recommendation
    WHERE status = 200 AND time >= make_timestamp_ns($since) AND time < make_timestamp_ns($until)
) GROUP BY item
"""
_LISTS_SQL = """
SELECT count(*) FROM recommendation
WHERE status = 200 AND time >= make_timestamp_ns($since) AND time < make_timestamp_ns($until)
"""
_SESSIONS_SQL = """
SELECT CAST(movie_id AS VARCHAR), count(*) FROM sessions
WHERE start_time >= make_timestamp_ns($since) AND start_time < make_timestamp_ns($until)
GROUP BY ALL
"""
_NEWEST_SQL = """
SELECT epoch_ns(max(t)) FROM (
    SELECT max(time) AS t FROM watch
    WHERE time >= make_timestamp_ns($since) AND time < make_timestamp_ns($until)
    UNION ALL SELECT max(time) FROM rate
    WHERE time >= make_timestamp_ns($since) AND time < make_timestamp_ns($until)
    UNION ALL SELECT max(time) FROM recommendation
    WHERE time >= make_timestamp_ns($since) AND time < make_timestamp_ns($until)
)
"""


def exposure(
    store: str | Path,
    *,
    since_ns: int | None = None,
    until_ns: int | None = None,
    head_share: float = HEAD_SHARE,
    new_release_days: int = NEW_RELEASE_DAYS,
    floor: float = EXPOSURE_FLOOR,
) -> dict[str, Any]:
    """Long-tail and new-release exposure over recommendations and watch sessions that
    started in [since, until) (the whole store by default), with the catalogue beside it."""
    started = time.monotonic()
    event_store = EventStore(store)
    if event_store.checkpoint() is None:
        raise ValueError(f"no committed events in {store}: run `movierec ingest` first")
    window = {"since": since_ns or 0, "until": until_ns or 2**62}
    with contextlib.closing(event_store.connect()) as con:
        slot_rows = dict(con.execute(_SLOTS_SQL, window).fetchall())
        lists = con.execute(_LISTS_SQL, window).fetchall()[0][0]
        session_rows = dict(con.execute(_SESSIONS_SQL, window).fetchall())
        newest = con.execute(_NEWEST_SQL, window).fetchall()[0][0]
    movie_ids = np.array(sorted(set(slot_rows) | set(session_rows)), dtype=object)
    slots = np.array([slot_rows.get(m, 0) for m in movie_ids], dtype=np.int64)
    sessions = np.array([session_rows.get(m, 0) for m in movie_ids], dtype=np.int64)
    releases = MovieReleases.load(event_store.catalog_path)
    warnings: list[str] = []
    end_day = np.datetime64(int(newest or 0), "ns").astype("datetime64[D]")
    classes = release_classes(movie_ids, releases, end_day, new_release_days)
    report = exposure_figures(movie_ids, slots, sessions, classes, int(lists), head_share, floor)
    if lists == 0:
        warnings.append("no status-200 recommendations in the window: nothing to judge")
    if sessions.sum() == 0:
        warnings.append("no watch sessions in the window: no share of watching to compare")
    if len(releases.ids) == 0:
        warnings.append(f"no catalogue at {event_store.catalog_path}: every release unknown")
    unknown = max(
        report["new_release"]["unknown_recommended_share"] or 0.0,
        report["new_release"]["unknown_watched_share"] or 0.0,
    )
    if unknown > _WARN_UNKNOWN_SHARE:
        warnings.append(
            f"up to {unknown:.1%} of slots or sessions are of movies of unknown release: "
            "the new-release shares leave them out"
        )
    for name in ("long_tail", "new_release"):
        part = report[name]
        if part["ratio"] is not None and not part["judged"]:
            warnings.append(
                f"{name}: not judged, too little data ({lists} lists, "
                f"{part['watched_sessions']} sessions; at least {MIN_LISTS} and {MIN_SESSIONS})"
            )
    return {
        "requirement": {
            "floor": floor,
            "head_share": head_share,
            "new_release_days": new_release_days,
            "min_lists": MIN_LISTS,
            "min_sessions": MIN_SESSIONS,
            "statement": (
                f"the long tail's and new releases' shares of recommendations are each at "
                f"least {floor:g}x their shares of watch sessions"
            ),
        },
        "window": {
            "from": None if since_ns is None else iso(since_ns),
            "until": None if until_ns is None else iso(until_ns),
            "data_end": None if newest is None else iso(int(newest)),
        },
        **report,
        "warnings": warnings,
        "seconds": round(time.monotonic() - started, 3),
    }
