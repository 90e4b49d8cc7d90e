"""`/metrics` text, read back with prometheus_client's own parser: exact numbers for a known
sequence of observations, label values that need escaping, and the process metrics."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from movierec.serving.metrics import BUCKETS, Metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(metrics: Metrics) -> Samples:
    """Every sample of one scrape, keyed by name and labels; a repeated key fails."""
    found: Samples = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            key = (sample.name, frozenset(sample.labels.items()))
            assert key not in found, f"sample {key} appears twice"
            found[key] = sample.value
    return found


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def buckets(samples: Samples, histogram: str = "movierec_handler_seconds") -> dict[str, float]:
    return {
        dict(labels)["le"]: v
        for (name, labels), v in samples.items()
        if name == f"{histogram}_bucket"
    }


def test_known_observations_give_exact_counts_buckets_and_sum() -> None:
    metrics = Metrics()
    # On a bound (counts in that bucket), between bounds, and past the last bound.
    for seconds in (0.0001, 0.0003, 0.003, 0.003, 0.7):
        metrics.observe(seconds)
    metrics.requests[("recommend", 200)] += 4
    metrics.requests[("recommend", 400)] += 1
    metrics.requests[("metrics", 200)] += 1
    metrics.answers.update({"model": 2, "segment": 1, "popular": 1})
    metrics.swaps, metrics.swap_failures = 3, 1
    metrics.fresh_events, metrics.fresh_updates = 7, 2
    metrics.telemetry_written, metrics.telemetry_dropped = 4, 0

    got = scrape(metrics)

    assert buckets(got) == {
        "0.0001": 1, "0.00025": 1, "0.0005": 2, "0.001": 2, "0.0025": 2, "0.005": 4,
        "0.01": 4, "0.025": 4, "0.05": 4, "0.1": 4, "0.25": 4, "0.6": 4, "1.0": 5, "2.5": 5,
        "+Inf": 5,
    }  # fmt: skip
    assert value(got, "movierec_handler_seconds_count") == 5
    assert math.isclose(value(got, "movierec_handler_seconds_sum"), 0.7064)
    assert value(got, "movierec_request_seconds_count") == 0  # the server timed nothing
    assert value(got, "movierec_requests_total", route="recommend", status="200") == 4
    assert value(got, "movierec_requests_total", route="recommend", status="400") == 1
    assert value(got, "movierec_requests_total", route="metrics", status="200") == 1
    assert value(got, "movierec_answers_total", source="model") == 2
    assert value(got, "movierec_answers_total", source="segment") == 1
    assert value(got, "movierec_fallbacks_total") == 2
    assert value(got, "movierec_model_swaps_total") == 3
    assert value(got, "movierec_model_swap_failures_total") == 1
    assert value(got, "movierec_fresh_events_total") == 7
    assert value(got, "movierec_fresh_updates_total") == 2
    assert value(got, "movierec_telemetry_written_total") == 4
    assert value(got, "movierec_telemetry_dropped_total") == 0
    assert value(got, "movierec_uptime_seconds") >= 0


def test_version_with_quote_backslash_and_newline_round_trips() -> None:
    metrics = Metrics()
    metrics.model_version = 'als "best"\\v2\nsecond line'
    metrics.model_loaded_at = 1_700_000_000.5
    got = scrape(metrics)
    assert value(got, "movierec_model_info", version='als "best"\\v2\nsecond line') == 1
    assert value(got, "movierec_model_loaded_timestamp_seconds") == 1_700_000_000.5


@given(st.text(min_size=1, max_size=40))
def test_any_version_text_round_trips(version: str) -> None:
    metrics = Metrics()
    metrics.model_version = version
    info = [
        (name, dict(labels)) for (name, labels) in scrape(metrics) if name == "movierec_model_info"
    ]
    assert info == [("movierec_model_info", {"version": version})]


def test_no_model_version_before_the_first_load() -> None:
    got = scrape(Metrics())
    names = {name for name, _ in got}
    assert "movierec_model_info" not in names
    assert "movierec_model_loaded_timestamp_seconds" not in names
    assert value(got, "movierec_handler_seconds_count") == 0


@given(st.lists(st.floats(min_value=0, max_value=2, allow_nan=False), max_size=60))
def test_buckets_count_observations_at_or_below_each_bound(observed: list[float]) -> None:
    metrics = Metrics()
    for seconds in observed:
        metrics.observe(seconds)
    got = scrape(metrics)
    expected = {str(bound): sum(s <= bound for s in observed) for bound in BUCKETS}
    assert buckets(got) == {**expected, "+Inf": len(observed)}
    assert value(got, "movierec_handler_seconds_count") == len(observed)
    assert math.isclose(value(got, "movierec_handler_seconds_sum"), sum(observed), abs_tol=1e-9)


def test_process_and_platform_metrics_are_present() -> None:
    got = scrape(Metrics())
    assert value(got, "process_resident_memory_bytes") > 0
    assert value(got, "process_open_fds") > 0
    assert value(got, "process_cpu_seconds_total") > 0
    assert any(name == "python_info" for name, _ in got)


def test_each_service_counts_its_own() -> None:
    first, second = Metrics(), Metrics()  # two registries: no duplicate-series error
    first.requests[("recommend", 200)] += 5
    first.observe(0.001)
    first.http.statuses[200] += 5
    got = scrape(second)
    assert [name for name, _ in got if name == "movierec_requests_total"] == []
    assert [name for name, _ in got if name == "movierec_http_responses_total"] == []
    assert value(got, "movierec_handler_seconds_count") == 0


def test_the_http_layers_numbers_are_exposed() -> None:
    metrics = Metrics()
    http = metrics.http
    http.statuses.update({200: 7, 413: 2, 503: 1})
    for seconds, n in ((0.0002, 6), (0.7, 1), (3.0, 1)):
        http.latency.observe(seconds, n)
    for key, n in (
        ("connections", 9),
        ("connections_rejected", 1),
        ("connections_evicted", 3),
        ("connections_shed", 1),
        ("bad_requests", 2),
        ("timeouts", 1),
        ("handler_errors", 0),
        ("turns_deferred", 4),
        ("backpressure_pauses", 2),
    ):
        http.counters[key] = n  # fmt: skip
    http.open_connections, http.buffered_bytes = 5, 4096

    got = scrape(metrics)

    for status, n in ((200, 7), (413, 2), (503, 1)):
        assert value(got, "movierec_http_responses_total", status=str(status)) == n
    request_seconds = buckets(got, "movierec_request_seconds")
    assert request_seconds["0.00025"] == 6 and request_seconds["0.6"] == 6
    assert request_seconds["1.0"] == 7 and request_seconds["+Inf"] == 8
    assert math.isclose(value(got, "movierec_request_seconds_sum"), 6 * 0.0002 + 3.7)
    assert value(got, "movierec_http_connections_total") == 9
    assert value(got, "movierec_http_connections_refused_total") == 1
    assert value(got, "movierec_http_connections_evicted_total") == 3
    assert value(got, "movierec_http_connections_shed_total") == 1
    assert value(got, "movierec_http_bad_requests_total") == 2
    assert value(got, "movierec_http_timeouts_total") == 1
    assert value(got, "movierec_http_handler_errors_total") == 0
    assert value(got, "movierec_http_deferred_turns_total") == 4
    assert value(got, "movierec_http_backpressure_pauses_total") == 2
    assert value(got, "movierec_http_open_connections") == 5
    assert value(got, "movierec_http_buffered_bytes") == 4096
