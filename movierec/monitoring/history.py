"""The monitor's time series: one point per scrape of each job, bounded, kept as JSON.

A scrape gives cumulative counters; a point is what happened since the previous good
scrape of the same job (rates per second, the latency quantiles of the requests in
between) plus the gauges as read (the model version). Only the points and the last raw
scrape of each job are kept, so the file stays small however long the monitor runs, and a
restart picks up where it stopped (the first scrape after it is compared with the last one
before it).
"""

from __future__ import annotations

import contextlib
from collections import deque
from pathlib import Path
from typing import Any

import orjson

from movierec.monitoring.scrape import bucket_deltas, quantile
from movierec.store.events import atomic_write

JOBS = ("service", "ingest")
DEFAULT_POINTS = 2000  # per job: about 2.8 hours at one scrape every 5 s


class History:
    def __init__(self, path: Path | None, limit: int = DEFAULT_POINTS) -> None:
        self.path = path
        self.limit = limit
        self.points: dict[str, deque[dict[str, Any]]] = {j: deque(maxlen=limit) for j in JOBS}
        self.last: dict[str, dict[str, Any] | None] = dict.fromkeys(JOBS)
        if path is not None and path.exists():
            # A damaged file costs the history, never the monitor.
            with contextlib.suppress(orjson.JSONDecodeError, KeyError, TypeError):
                saved = orjson.loads(path.read_bytes())
                for job in JOBS:
                    self.points[job].extend(saved["points"][job])
                    self.last[job] = saved["last"][job]

    def record(self, job: str, at: float, sample: dict[str, Any]) -> dict[str, Any]:
        """Add the point of one scrape (`sample` from scrape.parse) and return it."""
        point: dict[str, Any] = {"at": round(at, 3), "up": bool(sample.get("up"))}
        if not point["up"]:
            point["error"] = sample.get("error")
        else:
            previous = self.last[job]
            usable = previous is not None and at > previous["at"]
            if job == "service":
                point.update(_service_point(sample, previous if usable else None, at))
            else:
                point.update(_ingest_point(sample, previous if usable else None, at))
            self.last[job] = {"at": at, **sample}
        self.points[job].append(point)
        return point

    def series(self, job: str, field: str) -> list[tuple[float, float]]:
        """(time, value) of one field of a job's points, where it has a number."""
        return [
            (p["at"], float(p[field]))
            for p in self.points[job]
            if isinstance(p.get(field), int | float) and not isinstance(p.get(field), bool)
        ]

    def to_json(self) -> dict[str, Any]:
        return {
            "limit": self.limit,
            "points": {j: list(self.points[j]) for j in JOBS},
            "last": self.last,
        }

    def save(self) -> None:
        if self.path is not None:
            atomic_write(self.path, orjson.dumps(self.to_json()))


def _rate(new: float, old: float, seconds: float) -> float:
    # A counter that went down is a restart: what it holds now all happened since.
    return round((new - old if new >= old else new) / seconds, 6)


def _service_point(
    sample: dict[str, Any], previous: dict[str, Any] | None, at: float
) -> dict[str, Any]:
    point: dict[str, Any] = {
        "version": sample.get("version"),
        "requests": sample["requests"],
        "errors": sample["errors"],
        "timeouts": sample["timeouts"],
    }
    if previous is None or not previous.get("up", True):
        return point
    seconds = at - previous["at"]
    point["request_rate"] = _rate(sample["requests"], previous["requests"], seconds)
    point["error_rate"] = _rate(sample["errors"], previous["errors"], seconds)
    point["timeout_rate"] = _rate(sample["timeouts"], previous["timeouts"], seconds)
    asked = sample["requests"] - previous["requests"]
    ok = sample["ok"] - previous["ok"]
    if asked > 0 and ok >= 0:
        point["availability"] = round(ok / asked, 6)
    buckets = bucket_deltas(sample["buckets"], previous["buckets"])
    for name, q in (("latency_p50_ms", 0.5), ("latency_p99_ms", 0.99)):
        value = quantile(q, buckets)
        if value is not None:
            point[name] = round(value * 1000, 3)
    return point


def _ingest_point(
    sample: dict[str, Any], previous: dict[str, Any] | None, at: float
) -> dict[str, Any]:
    # Cumulative rejects stay in `last` only: a point carries their rates, which is what
    # the page plots, and the file stays a tenth of the size.
    point: dict[str, Any] = {"lines": sample["lines"], "lag_seconds": sample.get("lag_seconds")}
    if previous is None or not previous.get("up", True):
        return point
    seconds = at - previous["at"]
    point["lines_rate"] = _rate(sample["lines"], previous["lines"], seconds)
    point["reject_rates"] = {
        reason: _rate(count, previous["rejected"].get(reason, 0.0), seconds)
        for reason, count in sample["rejected"].items()
    }
    return point
