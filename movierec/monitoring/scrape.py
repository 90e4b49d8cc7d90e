"""Scraping /metrics: the service's and the ingestion's Prometheus text, read into the few
cumulative figures the monitor keeps, and histogram quantiles the way Prometheus takes them.

A scrape that fails (refused, timed out, an answer that does not parse) is a sample with
`up` false and the reason: the monitor records it, never raises it, since a service that
does not answer is exactly what the monitor is there to see.
"""

from __future__ import annotations

import math
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

SCRAPE_TIMEOUT = 2.0  # seconds; a service slower than this to show its metrics is down


@dataclass(frozen=True, slots=True)
class Scrape:
    """One scrape: the text (None when it failed) and why it failed."""

    text: str | None
    error: str | None = None


def fetch(url: str, timeout: float = SCRAPE_TIMEOUT) -> Scrape:
    """GET url (a base URL: /metrics is appended unless it is there)."""
    target = url if url.rstrip("/").endswith("/metrics") else url.rstrip("/") + "/metrics"
    try:
        with urllib.request.urlopen(target, timeout=timeout) as response:
            body = response.read()
    except (urllib.error.URLError, OSError, ValueError) as error:
        return Scrape(None, f"{type(error).__name__}: {error}")
    try:
        return Scrape(body.decode("utf-8"))
    except UnicodeDecodeError as error:
        return Scrape(None, f"not UTF-8: {error}")


def _samples(text: str) -> list[tuple[str, dict[str, str], float]]:
    return [
        (s.name, dict(s.labels), float(s.value))
        for family in text_string_to_metric_families(text)
        for s in family.samples
    ]


def service_figures(text: str) -> dict[str, Any]:
    """The service's cumulative figures: /recommend requests by outcome, the request time
    histogram (cumulative bucket counts by upper bound), server-side timeouts, the version."""
    out: dict[str, Any] = {
        "requests": 0.0,
        "ok": 0.0,
        "errors": 0.0,
        "timeouts": 0.0,
        "buckets": {},
        "count": 0.0,
        "version": None,
    }
    for name, labels, value in _samples(text):
        if name == "movierec_requests_total" and labels.get("route") == "recommend":
            out["requests"] += value
            status = labels.get("status", "")
            if status == "200":
                out["ok"] += value
            elif status.startswith("5"):
                out["errors"] += value
        elif name == "movierec_request_seconds_bucket":
            out["buckets"][labels["le"]] = value
        elif name == "movierec_request_seconds_count":
            out["count"] = value
        elif name == "movierec_http_timeouts_total":
            out["timeouts"] += value
        elif name == "movierec_model_info" and value >= 1:
            out["version"] = labels.get("version")
    return out


def ingest_figures(text: str) -> dict[str, Any]:
    """The ingestion's cumulative figures: lines read, rejects by reason, lag."""
    out: dict[str, Any] = {"lines": 0.0, "rejected": {}, "lag_seconds": None}
    for name, labels, value in _samples(text):
        if name == "movierec_ingest_lines_total":
            out["lines"] = value
        elif name == "movierec_ingest_rejected_total":
            out["rejected"][labels.get("reason", "")] = value
        elif name == "movierec_ingest_lag_seconds":
            out["lag_seconds"] = value
    return out


def parse(job: str, scrape: Scrape) -> dict[str, Any]:
    """A sample of `job` ("service" or "ingest"): its figures, or up false and the error."""
    if scrape.text is None:
        return {"up": False, "error": scrape.error}
    try:
        figures = service_figures(scrape.text) if job == "service" else ingest_figures(scrape.text)
    except (ValueError, KeyError, TypeError) as error:
        return {"up": False, "error": f"unparsable metrics: {error}"}
    return {"up": True, **figures}


def bucket_deltas(new: dict[str, float], old: dict[str, float]) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of a histogram between two scrapes, by bound. A
    counter that went down (a restarted service) counts from zero."""
    reset = any(new.get(le, 0.0) < old.get(le, 0.0) for le in new)
    pairs = [(float(le), count - (0.0 if reset else old.get(le, 0.0))) for le, count in new.items()]
    return sorted(pairs)


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """Prometheus's histogram_quantile: linear within the bucket holding rank q * total; the
    +Inf bucket answers the highest finite bound. None without observations."""
    if not buckets:
        return None
    total = buckets[-1][1]
    if total <= 0 or math.isnan(total):
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower_bound
            inside = count - lower_count
            share = (rank - lower_count) / inside if inside > 0 else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound
