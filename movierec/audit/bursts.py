"""Bursts of fresh accounts on one movie, as arrays: the scoring of every trailing window
and the detections it makes (`movierec.audit.attacks` reads the store and explains).

Times inside are microseconds on one sorted axis per movie (movie code x gap + time), so
a window is two binary searches and no window ever reaches into the next movie.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from pydantic import Field
from scipy.stats import poisson

from movierec.config import SettingsGroup
from movierec.times import iso

HOUR_US = 3600 * 1_000_000
DAY_US = 24 * HOUR_US
ACCOUNT_IDS_SHOWN = 1000  # a detection lists at most this many account ids
MAX_SCORE = 300.0


class ShillingDetectionSettings(SettingsGroup):
    """The shilling detector's freshness, windows and margins."""

    fresh_days: float = Field(
        2.0, gt=0, description="an account is fresh this long after its first event"
    )
    window_hours: float = Field(
        3.0, gt=0, description="hours of fresh arrivals on one movie counted together"
    )
    baseline_days: float = Field(
        7.0, gt=0, description="days before the window whose fresh arrivals are its baseline"
    )
    peak_factor: float = Field(
        2.5, ge=1, description="the baselines' rates times this (the evening peak, and slack)"
    )
    floor_per_hour: float = Field(
        0.05, gt=0, description="fresh arrivals an hour any movie is expected to have at least"
    )
    min_accounts: int = Field(5, ge=1, description="fresh accounts a window needs to be abnormal")
    min_score: float = Field(
        6.0, gt=0, description="-log10 of the Poisson tail a window needs to be abnormal"
    )


def by_movie_and_time(arrivals: dict[str, np.ndarray], movies: np.ndarray) -> dict[str, Any]:
    """The arrivals sorted by movie, then arrival time (then account), with each one's
    `movie_code`: its movie's index in `movies` (sorted ids, which must hold them all)."""
    code = np.searchsorted(movies, arrivals["movie_id"].astype(str))
    order = np.lexsort((arrivals.get("user_id", code), arrivals["arrival_ns"], code))
    return {**{k: v[order] for k, v in arrivals.items()}, "movie_code": code[order]}


def window_scores(
    fresh: dict[str, np.ndarray],
    traffic: dict[str, np.ndarray],
    fresh_from: int,
    site_ratio: float,
    settings: ShillingDetectionSettings,
) -> dict[str, np.ndarray]:
    """Per fresh arrival (both tables sorted by `by_movie_and_time` on the same movies):
    the fresh arrivals on its movie in the trailing window ending at it (itself
    included), the count expected there and the score. The expectation is the larger of
    the movie's own fresh arrivals an hour over the baseline days before the window,
    and the site's fresh-to-proven ratio times the proven arrivals on the movie in the
    window (`traffic`: every account's arrivals; a new release draws newcomers too),
    both times peak_factor, and never under floor_per_hour."""
    n = len(fresh["arrival_ns"])
    if n == 0:
        empty = np.empty(0, np.float64)
        return {"accounts": np.empty(0, np.int64), "expected": empty, "score": empty}
    window = int(settings.window_hours * HOUR_US)
    history = int(settings.baseline_days * DAY_US)
    t = np.maximum(fresh["arrival_ns"] - fresh_from, 0) // 1000
    u = np.maximum(traffic["arrival_ns"] - fresh_from, 0) // 1000
    gap = int(max(t.max(), u.max(initial=0))) + window + history + 1
    key = fresh["movie_code"].astype(np.int64) * gap + t
    count = np.arange(n) - np.searchsorted(key, key - window, side="right") + 1
    # The movie's own baseline: [t - window - history, t - window), from fresh_from on.
    baseline_end = key - window
    baseline_start = np.maximum(baseline_end - history, fresh["movie_code"] * gap)
    in_baseline = np.searchsorted(key, baseline_end) - np.searchsorted(key, baseline_start)
    hours = np.maximum((baseline_end - baseline_start) / HOUR_US, 0.0)
    own_rate = np.divide(in_baseline, hours, out=np.zeros(n), where=hours > 0)
    # The movie's traffic now: every arrival in the window, less the fresh ones.
    all_keys = traffic["movie_code"].astype(np.int64) * gap + u
    in_window = np.searchsorted(all_keys, key, side="right") - np.searchsorted(
        all_keys, key - window, side="right"
    )
    proven = np.maximum(in_window - count, 0)
    expected = settings.peak_factor * np.maximum(
        own_rate * settings.window_hours, site_ratio * proven
    )
    expected = np.maximum(expected, settings.floor_per_hour * settings.window_hours)
    # log P(X >= count) = logsf(count - 1); in base 10, negated (at most MAX_SCORE: a tail
    # under 1e-300 is as good as impossible, and stays a finite number in JSON).
    score = np.minimum(-poisson.logsf(count - 1, expected) / math.log(10), MAX_SCORE)
    return {"accounts": count.astype(np.int64), "expected": expected, "score": score}


def episodes(
    fresh: dict[str, np.ndarray],
    scores: dict[str, np.ndarray],
    settings: ShillingDetectionSettings,
) -> list[dict[str, Any]]:
    """One detection per run of abnormal arrivals of one movie, each less than a window
    after the last (fresh sorted by `by_movie_and_time`)."""
    abnormal = (scores["accounts"] >= settings.min_accounts) & (
        scores["score"] >= settings.min_score
    )
    window = int(settings.window_hours * HOUR_US) * 1000
    codes, times = fresh["movie_code"], fresh["arrival_ns"]
    flagged = np.flatnonzero(abnormal)
    out: list[dict[str, Any]] = []
    i = 0
    while i < len(flagged):
        first = j = flagged[i]
        k = i
        while (
            k + 1 < len(flagged)
            and codes[flagged[k + 1]] == codes[first]
            and times[flagged[k + 1]] - times[flagged[k]] < window
        ):
            k += 1
        last = flagged[k]
        # The arrivals of the window that first crossed: back from `first` on its movie.
        while j > 0 and codes[j - 1] == codes[first] and times[j - 1] > times[first] - window:
            j -= 1
        accounts = np.unique(fresh["user_id"][j : last + 1])
        out.append(
            {
                "movie_id": str(fresh["movie_id"][first]),
                "first_seen": iso(int(times[j])),
                "detected_at": iso(int(times[first])),
                "first_seen_ns": int(times[j]),
                "detected_at_ns": int(times[first]),
                "accounts": len(accounts),
                "events": int(fresh["events"][j : last + 1].sum()),
                "score": round(float(scores["score"][flagged[i : k + 1]].max()), 3),
                "expected_at_detection": round(float(scores["expected"][first]), 4),
                "account_ids": accounts[:ACCOUNT_IDS_SHOWN].tolist(),
            }
        )
        i = k + 1
    out.sort(key=lambda d: (d["detected_at_ns"], d["movie_id"]))
    return out


def group_campaigns(detections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Detections that share their accounts (at least half of the smaller set, and two)
    as one campaign each: its `target` the movie most of them arrived on (the rest are
    what they watched to look like people), `movies` by accounts, `accounts` all of them,
    the earliest `first_seen` and `detected_at`, the highest `score`."""
    parent = list(range(len(detections)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    sets = [set(d["account_ids"]) for d in detections]
    for i in range(len(detections)):
        for j in range(i + 1, len(detections)):
            shared = len(sets[i] & sets[j])
            if shared >= max(2, 0.5 * min(len(sets[i]), len(sets[j]))):
                parent[root(j)] = root(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(detections)):
        groups.setdefault(root(i), []).append(i)
    out = []
    for members in groups.values():
        ranked = sorted(
            members, key=lambda i: (-detections[i]["accounts"], -detections[i]["score"])
        )
        first = min(members, key=lambda i: detections[i]["detected_at_ns"])
        out.append(
            {
                "target": detections[ranked[0]]["movie_id"],
                "movies": [detections[i]["movie_id"] for i in ranked],
                "accounts": len(set().union(*(sets[i] for i in members))),
                "first_seen": min(detections[i]["first_seen"] for i in members),
                "detected_at": detections[first]["detected_at"],
                "detected_at_ns": detections[first]["detected_at_ns"],
                "score": max(detections[i]["score"] for i in members),
            }
        )
    out.sort(key=lambda c: (c["detected_at_ns"], c["target"]))
    return out
