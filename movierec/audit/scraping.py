"""Scraping and flooding, seen in the answer log: per time bucket (a minute by default),
three figures against their own baseline, the median of the buckets before it that were
not judged abnormal themselves (so a long scrape never becomes its own baseline):

    rate            requests answered in the bucket; abnormal above max(rate_margin x
                    baseline, baseline + min_excess_requests)
    unknown_ids     the share of the bucket's requests for user ids the store has never
                    seen (the site asks for its own users; a scraper enumerates ids);
                    abnormal above baseline + unknown_margin, once min_requests are in
    sequential_ids  the longest run of consecutive user ids among those asked in the
                    bucket (in any order, so concurrent requests that overtake each other
                    still count); abnormal at max(run_margin x baseline, min_run) or more.
                    Asking for nearly every id of a range makes it long too, whatever the
                    order: a flood over all the users of a small site trips it

A bucket with fewer than min_baseline_buckets usable buckets before it is not judged (it
is counted in `undecided_buckets`). Consecutive abnormal buckets of one kind make one
detection: `started` is the start of its first bucket (the burst began at or after it),
`detected_at` the moment within that bucket when the figure crossed its threshold, from
the requests answered so far: what a detector following the log would have known then.

What the log can and cannot tell apart: it holds no client address, so a detection says
that somebody enumerates ids or floods, never who; the requests of the site and of the
other client are mixed, and `requests` counts both. A flood of the site's own users at
random, or a scraper of known users at the site's own pace and in no order, looks like a
busier site. A surge of the site's real traffic (a promotion) is a rate detection too;
only the unknown-id share and the runs point at a client that is not the site. The
answer log may be sampled (`movierec serve --sample`): rates scale with the sample and
runs break up below 1.
"""

from __future__ import annotations

import contextlib
import logging
import statistics
from collections import deque
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field

from movierec.config import SettingsGroup
from movierec.online.answers import read_new
from movierec.store.events import EventStore

log = logging.getLogger("movierec.audit.scraping")

KINDS = ("rate", "unknown_ids", "sequential_ids")
LIMITS = (
    "no client address is logged: a detection says that ids are enumerated or the service "
    "flooded, never by whom, and its requests count the site's too",
    "a flood of known users at random, or a scraper of known users at the site's pace and "
    "in no order, looks like a busier site",
    "a surge of the site's own traffic is a rate detection as well; only unknown ids and "
    "sequential runs point at a client that is not the site",
)


class ScrapingSettings(SettingsGroup):
    """The detector's buckets, baselines and margins."""

    bucket_seconds: int = Field(60, ge=1, description="seconds per bucket of the answer log")
    baseline_buckets: int = Field(
        30, ge=1, description="normal buckets before a bucket whose median is its baseline"
    )
    min_baseline_buckets: int = Field(
        5, ge=1, description="usable buckets a bucket needs before it to be judged"
    )
    rate_margin: float = Field(3.0, gt=1, description="a rate this many times the baseline")
    min_excess_requests: int = Field(
        100, ge=1, description="and at least this many requests above it, to be abnormal"
    )
    unknown_margin: float = Field(
        0.1, gt=0, lt=1, description="a share of unknown ids this far above the baseline"
    )
    min_requests: int = Field(
        100, ge=1, description="requests a bucket needs before its unknown-id share counts"
    )
    run_margin: float = Field(3.0, gt=1, description="a longest run this many times the baseline")
    min_run: int = Field(20, ge=2, description="and at least this long, to be abnormal")


def scraping_report(
    answers_dir: Path, store: Path | None, settings: ScrapingSettings | None = None
) -> dict[str, Any]:
    """The detections in the answer log under `answers_dir`, ids judged against the users
    the store at `store` has seen (watch, rate or recommendation lines); without a store,
    against the service's own verdict, the answers it gave from what is popular."""
    table, _, bad = read_new(answers_dir, {})
    warnings = [f"{bad} answer log lines did not parse"] if bad else []
    known = None
    if store is not None:
        known = known_users(store)
        if len(known) == 0:
            warnings.append(f"the store at {store} has seen no user: every id counts as unknown")
    report = detect_scraping(table, known, settings)
    report["warnings"] = warnings + report["warnings"]
    for warning in report["warnings"]:
        log.warning("scraping: %s", warning)
    return report


def known_users(store: Path) -> np.ndarray:
    """Every user id the store has a line of, sorted."""
    with contextlib.closing(EventStore(store).connect()) as con:
        rows = con.execute(
            "SELECT DISTINCT user_id FROM (SELECT user_id FROM watch UNION ALL "
            "SELECT user_id FROM rate UNION ALL SELECT user_id FROM recommendation) "
            "ORDER BY user_id"
        ).fetchnumpy()
    return np.asarray(rows["user_id"], dtype=np.int64)


def detect_scraping(
    answers: pa.Table, known: np.ndarray | None, settings: ScrapingSettings | None = None
) -> dict[str, Any]:
    """Detections in an answer table (online/answers.py's schema: served_us, user_id,
    source); `known` the user ids the site has (None: the answers' source says, `popular`
    being an id neither the model nor the catalogue knows)."""
    settings = settings or ScrapingSettings()
    parameters: dict[str, Any] = {
        **settings.model_dump(),
        "unknown_basis": "answer_source" if known is None else "store",
        "known_users": None if known is None else len(known),
    }
    empty = {"detections": [], "buckets": [], "answers": 0, "undecided_buckets": 0}
    if answers.num_rows == 0:
        return {
            **empty,
            "parameters": parameters,
            "limits": list(LIMITS),
            "warnings": ["the answer log holds no answers: nothing to judge"],
        }
    times = answers.column("served_us").to_numpy()
    order = np.argsort(times, kind="stable")
    times = times[order]
    users = answers.column("user_id").to_numpy().astype(np.int64)[order]
    if known is None:
        unknown = np.asarray(answers.column("source").to_pylist(), dtype=object)[order] == "popular"
    else:
        unknown = ~np.isin(users, np.asarray(known, dtype=np.int64))
    width = settings.bucket_seconds * 1_000_000
    first = times[0] // width * width
    buckets = (times - first) // width
    series = bucket_figures(buckets, users, unknown)
    judged = _judge(series, settings)
    detections = _episodes(judged, series, times, users, unknown, buckets, first, width, settings)
    rows = [
        {
            "start": _iso(first + i * width),
            "requests": int(series["requests"][i]),
            "unknown_share": _share(series["unknown"][i], series["requests"][i]),
            "longest_run": int(series["longest_run"][i]),
            **{f"baseline_{kind}": _rounded(judged[kind]["baseline"][i]) for kind in KINDS},
            "abnormal": [kind for kind in KINDS if judged[kind]["flag"][i]],
        }
        for i in range(len(series["requests"]))
    ]
    undecided = sum(1 for i in range(len(rows)) if judged["rate"]["baseline"][i] is None)
    warnings = []
    if undecided == len(rows):
        warnings.append(
            f"{len(rows)} bucket(s) of {settings.bucket_seconds} s: too few to judge any "
            f"against a baseline of {settings.min_baseline_buckets}"
        )
    return {
        "detections": detections,
        "buckets": rows,
        "answers": len(times),
        "undecided_buckets": undecided,
        "parameters": parameters,
        "limits": list(LIMITS),
        "warnings": warnings,
    }


def bucket_figures(
    buckets: np.ndarray, users: np.ndarray, unknown: np.ndarray
) -> dict[str, np.ndarray]:
    """Per bucket 0..max: requests, unknown-id requests, and the longest run of consecutive
    ids among the distinct ids asked in it."""
    n = int(buckets.max()) + 1
    requests = np.bincount(buckets, minlength=n)
    unknown_count = np.bincount(buckets, weights=unknown.astype(np.float64), minlength=n)
    # Distinct (bucket, id) pairs in order: a run continues while the bucket is the same
    # and the id is one more than the last.
    pairs = np.unique((buckets.astype(np.int64) << 32) | (users & 0xFFFFFFFF))
    pair_bucket, pair_user = pairs >> 32, pairs & 0xFFFFFFFF
    starts = np.ones(len(pairs), dtype=bool)
    starts[1:] = (pair_bucket[1:] != pair_bucket[:-1]) | (pair_user[1:] != pair_user[:-1] + 1)
    first = np.flatnonzero(starts)
    lengths = np.diff(np.append(first, len(pairs)))
    longest = np.zeros(n, dtype=np.int64)
    np.maximum.at(longest, pair_bucket[first], lengths)
    return {"requests": requests, "unknown": unknown_count.astype(np.int64), "longest_run": longest}


def _judge(series: dict[str, np.ndarray], settings: ScrapingSettings) -> dict[str, Any]:
    """Per kind and bucket: the baseline (None: too few buckets before it), the threshold
    and whether the bucket is abnormal."""
    requests = series["requests"]
    share = np.divide(series["unknown"], requests, out=np.zeros(len(requests)), where=requests > 0)
    figures = {"rate": requests, "unknown_ids": share, "sequential_ids": series["longest_run"]}
    usable = {  # which buckets may judge others and enter their baselines
        "rate": np.ones(len(requests), dtype=bool),
        "unknown_ids": requests >= settings.min_requests,
        "sequential_ids": requests > 0,
    }
    out: dict[str, Any] = {}
    for kind in KINDS:
        history: deque[float] = deque(maxlen=settings.baseline_buckets)
        baselines: list[float | None] = []
        thresholds: list[float | None] = []
        flags: list[bool] = []
        for i, value in enumerate(figures[kind].tolist()):
            base = (
                statistics.median(history)
                if len(history) >= settings.min_baseline_buckets
                else None
            )
            limit = None if base is None else _threshold(kind, base, settings)
            flag = limit is not None and usable[kind][i] and _over(kind, value, limit)
            if usable[kind][i] and not flag:
                history.append(value)
            baselines.append(None if base is None else float(base))
            thresholds.append(limit)
            flags.append(bool(flag))
        out[kind] = {
            "figure": figures[kind],
            "baseline": baselines,
            "threshold": thresholds,
            "flag": flags,
        }
    return out


def _threshold(kind: str, base: float, s: ScrapingSettings) -> float:
    if kind == "rate":
        return max(s.rate_margin * base, base + s.min_excess_requests)
    if kind == "unknown_ids":
        return base + s.unknown_margin
    return max(s.run_margin * base, float(s.min_run))


def _over(kind: str, value: float, limit: float) -> bool:
    # A run reaching its threshold is abnormal; a rate or share must exceed it.
    return value >= limit if kind == "sequential_ids" else value > limit


def _episodes(
    judged: dict[str, Any],
    series: dict[str, np.ndarray],
    times: np.ndarray,
    users: np.ndarray,
    unknown: np.ndarray,
    buckets: np.ndarray,
    first: int,
    width: int,
    settings: ScrapingSettings,
) -> list[dict[str, Any]]:
    """One detection per stretch of consecutive abnormal buckets of one kind."""
    out = []
    bounds = np.searchsorted(buckets, np.arange(len(series["requests"]) + 1))
    for kind in KINDS:
        flags = judged[kind]["flag"]
        i = 0
        while i < len(flags):
            if not flags[i]:
                i += 1
                continue
            j = i
            while j + 1 < len(flags) and flags[j + 1]:
                j += 1
            lo, hi = bounds[i], bounds[i + 1]
            crossing = _crossing(
                kind, judged[kind]["threshold"][i], users[lo:hi], unknown[lo:hi], settings
            )
            out.append(
                {
                    "kind": kind,
                    "started": _iso(first + i * width),
                    "detected_at": _iso(int(times[lo + crossing])),
                    "ended": _iso(first + (j + 1) * width),
                    "buckets": j - i + 1,
                    "requests": int(series["requests"][i : j + 1].sum()),
                    "score": max(_score(kind, judged[kind], k) for k in range(i, j + 1)),
                }
            )
            i = j + 1
    return sorted(out, key=lambda d: (d["detected_at"], d["kind"]))


def _crossing(
    kind: str, limit: float, users: np.ndarray, unknown: np.ndarray, settings: ScrapingSettings
) -> int:
    """The index, within an abnormal bucket's requests in time order, of the request at
    which the bucket's figure first went over its threshold."""
    if kind == "rate":
        return int(np.floor(limit))  # the request that made the count exceed the limit
    if kind == "unknown_ids":
        seen = np.arange(1, len(users) + 1)
        over = (np.cumsum(unknown) / seen > limit) & (seen >= settings.min_requests)
        return int(np.argmax(over))
    # Runs of consecutive ids, merged as ids arrive: span[x] is the length of x's run,
    # kept current at both ends of every run.
    span: dict[int, int] = {}
    for index, user in enumerate(users.tolist()):
        if user in span:
            continue
        left, right = span.get(user - 1, 0), span.get(user + 1, 0)
        length = left + right + 1
        span[user] = span[user - left] = span[user + right] = length
        if length >= limit:
            return index
    raise AssertionError("an abnormal bucket's run never reached its threshold")


def _score(kind: str, judged: dict[str, Any], i: int) -> float:
    """How far over: the rate and the run as a multiple of the baseline, the share as the
    excess over it."""
    value, base = float(judged["figure"][i]), judged["baseline"][i]
    if kind == "unknown_ids":
        return round(value - base, 4)
    return round(value / max(base, 1.0), 4)


def _share(part: int, whole: int) -> float | None:
    return round(float(part) / float(whole), 4) if whole else None


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def _iso(micros: int) -> str:
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat(timespec="milliseconds")
