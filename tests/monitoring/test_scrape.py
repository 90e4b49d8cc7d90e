"""Reading /metrics: the figures the monitor keeps, from hand-written text and from the
service's own renderer, and histogram quantiles against a slow reference."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from movierec.monitoring.scrape import (
    Scrape,
    bucket_deltas,
    fetch,
    ingest_figures,
    parse,
    quantile,
    service_figures,
)
from movierec.serving.metrics import Metrics

SERVICE = """# TYPE movierec_requests_total counter
movierec_requests_total{route="recommend",status="200"} 90
movierec_requests_total{route="recommend",status="503"} 6
movierec_requests_total{route="recommend",status="400"} 4
movierec_requests_total{route="metrics",status="200"} 12
# TYPE movierec_request_seconds histogram
movierec_request_seconds_bucket{le="0.001"} 50
movierec_request_seconds_bucket{le="0.01"} 90
movierec_request_seconds_bucket{le="0.6"} 100
movierec_request_seconds_bucket{le="+Inf"} 112
movierec_request_seconds_count 112
movierec_request_seconds_sum 3.5
# TYPE movierec_http_timeouts_total counter
movierec_http_timeouts_total 2
# TYPE movierec_model_info gauge
movierec_model_info{version="v\\"1"} 1
"""

INGEST = """# TYPE movierec_ingest_lines_total counter
movierec_ingest_lines_total 1000
# TYPE movierec_ingest_rejected_total counter
movierec_ingest_rejected_total{reason="malformed"} 7
movierec_ingest_rejected_total{reason="bad_rating"} 0
# TYPE movierec_ingest_lag_seconds gauge
movierec_ingest_lag_seconds 1.5
"""


def reference_quantile(q: float, per_bucket: list[tuple[float, int]]) -> float | None:
    """histogram_quantile the slow way: walk the observations one by one to the one at
    rank q * n, then place it linearly inside its bucket."""
    total = sum(n for _, n in per_bucket)
    if total == 0:
        return None
    rank = q * total
    seen, lower = 0, 0.0
    for bound, n in per_bucket:
        for k in range(1, n + 1):
            if seen + k >= rank:
                if math.isinf(bound):
                    return lower
                return lower + (bound - lower) * (rank - seen) / n
        seen += n
        lower = bound
    return lower


def test_service_figures_from_hand_written_text() -> None:
    got = service_figures(SERVICE)
    assert got["requests"] == 100 and got["ok"] == 90 and got["errors"] == 6
    assert got["timeouts"] == 2 and got["count"] == 112
    assert got["version"] == 'v"1'  # the label's escape undone
    assert got["buckets"] == {"0.001": 50, "0.01": 90, "0.6": 100, "+Inf": 112}


def test_ingest_figures_from_hand_written_text() -> None:
    assert ingest_figures(INGEST) == {
        "lines": 1000,
        "rejected": {"malformed": 7, "bad_rating": 0},
        "lag_seconds": 1.5,
    }


def test_the_service_renderer_reads_back() -> None:
    metrics = Metrics()
    metrics.requests[("recommend", 200)] += 5
    metrics.model_version = "20250101T000000Z-als-abc123"
    for _ in range(5):
        metrics.http.latency.observe(0.002)
    got = service_figures(metrics.render().decode())
    assert got["requests"] == 5 and got["ok"] == 5
    assert got["version"] == "20250101T000000Z-als-abc123"
    assert got["count"] == 5
    assert 0.001 <= quantile(0.5, bucket_deltas(got["buckets"], {})) <= 0.0025


def test_a_failed_or_garbled_scrape_is_a_sample_that_is_down() -> None:
    assert parse("service", Scrape(None, "ConnectionRefusedError: refused")) == {
        "up": False,
        "error": "ConnectionRefusedError: refused",
    }
    garbled = parse("service", Scrape("movierec_requests_total{route= 5\n"))
    assert garbled["up"] is False and "unparsable" in garbled["error"]
    refused = fetch("http://127.0.0.1:9", timeout=0.5)  # port 9: nothing listens
    assert refused.text is None and refused.error


def test_bucket_deltas_subtract_the_previous_scrape_unless_the_counter_reset() -> None:
    old = {"0.1": 5.0, "+Inf": 10.0}
    assert bucket_deltas({"0.1": 8.0, "+Inf": 20.0}, old) == [(0.1, 3.0), (math.inf, 10.0)]
    assert bucket_deltas({"0.1": 1.0, "+Inf": 2.0}, old) == [(0.1, 1.0), (math.inf, 2.0)]


def test_quantile_known_values() -> None:
    buckets = [(0.1, 50.0), (0.2, 100.0), (math.inf, 100.0)]
    assert quantile(0.5, buckets) == 0.1
    assert math.isclose(quantile(0.75, buckets), 0.15)
    assert quantile(0.99, [(0.1, 0.0), (math.inf, 10.0)]) == 0.1  # +Inf: the last bound
    assert quantile(0.5, [(0.1, 0.0), (math.inf, 0.0)]) is None


BOUNDS = (0.001, 0.01, 0.1, 0.6, 2.5, math.inf)


@given(st.lists(st.integers(0, 30), min_size=len(BOUNDS), max_size=len(BOUNDS)),
       st.sampled_from([0.01, 0.5, 0.9, 0.99, 1.0]))  # fmt: skip
def test_quantile_matches_the_slow_walk(counts: list[int], q: float) -> None:
    per_bucket = list(zip(BOUNDS, counts, strict=True))
    cumulative, total = [], 0
    for bound, n in per_bucket:
        total += n
        cumulative.append((bound, float(total)))
    fast, slow = quantile(q, cumulative), reference_quantile(q, per_bucket)
    assert (fast is None) == (slow is None)
    if fast is not None:
        assert math.isclose(fast, slow, rel_tol=1e-9, abs_tol=1e-12)
