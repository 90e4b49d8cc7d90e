"""The built-in evaluator on synthetic scrapes whose right answers are known: the rules'
series computed exactly, `for` honoured to the second, the transitions recorded, state
carried across a restart; and properties of its arithmetic (hypothesis)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.monitoring import promql
from movierec.monitoring.evaluator import FIRING, INACTIVE, PENDING, Evaluator
from movierec.monitoring.rules import INGEST_JOB, SERVICE_JOB, by_name

BOUNDS = ("0.1", "0.25", "0.6", "1.0", "+Inf")


def service_text(
    ok: float,
    errors: float = 0,
    late: float = 0,
    buckets: dict[str, float] | None = None,
    model: bool = True,
) -> str:
    """A service scrape: `ok` /recommend answered 200, `errors` answered 500, `late` requests
    over 600 ms; the request histogram's cumulative buckets given or made from those."""
    count = ok + errors
    cumulative = buckets or {"0.1": count - late, "0.25": count - late, "0.6": count - late,
                             "1.0": count, "+Inf": count}  # fmt: skip
    lines = [
        "# TYPE movierec_requests_total counter",
        f'movierec_requests_total{{route="recommend",status="200"}} {ok}',
        f'movierec_requests_total{{route="recommend",status="500"}} {errors}',
        'movierec_requests_total{route="metrics",status="200"} 3',
        "# TYPE movierec_request_seconds histogram",
        *(f'movierec_request_seconds_bucket{{le="{le}"}} {cumulative[le]}' for le in BOUNDS),
        f"movierec_request_seconds_count {cumulative['+Inf']}",
        "movierec_request_seconds_sum 1.0",
        "# TYPE movierec_model_info gauge",
    ]
    if model:
        lines.append('movierec_model_info{version="v1"} 1')
    return "\n".join(lines) + "\n"


def ingest_text(lines: float, rejected: float, lag: float = 1.0) -> str:
    return (
        "# TYPE movierec_ingest_lines_total counter\n"
        f"movierec_ingest_lines_total {lines}\n"
        "# TYPE movierec_ingest_rejected_total counter\n"
        f'movierec_ingest_rejected_total{{reason="malformed"}} {rejected}\n'
        'movierec_ingest_rejected_total{reason="empty"} 0\n'
        "# TYPE movierec_ingest_lag_seconds gauge\n"
        f"movierec_ingest_lag_seconds {lag}\n"
    )


def state(evaluator: Evaluator, at: float, name: str) -> str:
    return next(a for a in evaluator.evaluate(at) if a.name == name).state


def test_availability_of_99_5_percent_fires_after_five_minutes() -> None:
    ev = Evaluator()
    states = {}
    for minute in range(11):  # 1000 answers 200 a minute, 5 of them later than 600 ms
        at = 60.0 * minute
        ev.observe_scrape(SERVICE_JOB, service_text(1000 * minute, late=5 * minute), at)
        states[minute] = state(ev, at, "MovierecAvailabilityLow")
    assert ev.series("availability_1h", 600) == pytest.approx(0.995, abs=1e-12)
    assert states[0] == INACTIVE  # one scrape: no rate yet
    assert states[1] == states[5] == PENDING
    assert states[6] == states[10] == FIRING  # pending since 60 s, `for` is 300 s
    alert = ev.states["MovierecAvailabilityLow"]
    assert [(t.at, t.from_state, t.to_state) for t in alert.history] == [
        (60.0, INACTIVE, PENDING),
        (360.0, PENDING, FIRING),
    ]
    assert alert.since == 360.0 and alert.severity == "critical"


def test_availability_of_99_95_percent_and_of_99_7_with_errors() -> None:
    fine, errors = Evaluator(), Evaluator()
    for minute in range(11):
        at = 60.0 * minute
        fine.observe_scrape(SERVICE_JOB, service_text(2000 * minute, late=minute), at)
        errors.observe_scrape(SERVICE_JOB, service_text(1000 * minute, errors=3 * minute), at)
        assert state(fine, at, "MovierecAvailabilityLow") == INACTIVE
        errors.evaluate(at)
    assert fine.series("availability_1h", 600) == pytest.approx(0.9995, abs=1e-12)
    assert errors.series("availability_1h", 600) == pytest.approx(1000 / 1003, abs=1e-12)
    assert state(errors, 600, "MovierecAvailabilityLow") == FIRING


def test_a_restart_of_the_service_is_a_reset_not_a_negative_rate() -> None:
    ev = Evaluator()
    # 1000 good answers a minute; the service restarts after minute 3 and counts from zero.
    for minute, count in enumerate([0, 1000, 2000, 3000, 500, 1500, 2500]):
        ev.observe_scrape(SERVICE_JOB, service_text(count), 60.0 * minute)
    assert ev.series("availability_1h", 360) == 1.0
    grew = ev._increases(SERVICE_JOB, 360, 3600)
    key = ("movierec_requests_total", frozenset({("route", "recommend"), ("status", "200")}))
    assert grew[key] == 3000 + 500 + 2000


def test_p99_interpolates_inside_its_bucket_as_histogram_quantile_does() -> None:
    slow, fast = Evaluator(), Evaluator()
    for minute in range(7):  # 100 requests a minute
        n = minute
        slow.observe_scrape(
            SERVICE_JOB,
            service_text(100 * n, buckets={"0.1": 90 * n, "0.25": 98 * n, "0.6": 100 * n,
                                           "1.0": 100 * n, "+Inf": 100 * n}),
            60.0 * minute,
        )  # fmt: skip
        fast.observe_scrape(
            SERVICE_JOB,
            service_text(100 * n, buckets={"0.1": 90 * n, "0.25": 100 * n, "0.6": 100 * n,
                                           "1.0": 100 * n, "+Inf": 100 * n}),
            60.0 * minute,
        )  # fmt: skip
    assert slow.series("latency_p99_5m", 360) == pytest.approx(0.425)  # 0.25 + 0.35 * 1/2
    assert fast.series("latency_p99_5m", 360) == pytest.approx(0.235)  # 0.1 + 0.15 * 9/10
    slow.evaluate(60)
    assert state(slow, 360, "MovierecLatencyHigh") == FIRING
    assert state(fast, 360, "MovierecLatencyHigh") == INACTIVE


def test_histogram_quantile_edge_cases() -> None:
    inf = math.inf
    assert promql.histogram_quantile(0.99, {0.1: 0, inf: 0}) != promql.histogram_quantile(
        0.99, {0.1: 0, inf: 0}
    )  # NaN: no observations
    assert promql.histogram_quantile(0.99, {0.1: 1, 0.5: 1, inf: 10}) == 0.5  # in +Inf
    assert math.isnan(promql.histogram_quantile(0.5, {0.1: 1, 0.5: 2}))  # no +Inf bucket
    assert promql.histogram_quantile(0.5, {}) is None


def test_service_down_fires_after_30_seconds_and_clears_on_the_next_good_scrape() -> None:
    ev = Evaluator()
    assert state(ev, 0, "MovierecServiceDown") == PENDING  # never scraped: absent(up)
    ev.observe_scrape(SERVICE_JOB, service_text(0), 1)
    assert state(ev, 1, "MovierecServiceDown") == INACTIVE
    for at in (10, 20, 30, 39):
        ev.observe_scrape(SERVICE_JOB, None, at)
        assert state(ev, at, "MovierecServiceDown") == PENDING
    ev.observe_scrape(SERVICE_JOB, "this is not the exposition format {", 40)
    assert state(ev, 40, "MovierecServiceDown") == FIRING  # down since 10 s
    assert state(ev, 40, "MovierecNoModel") == INACTIVE  # down is not "up without a model"
    ev.observe_scrape(SERVICE_JOB, service_text(0), 41)
    assert state(ev, 41, "MovierecServiceDown") == INACTIVE
    moves = [(t.at, t.to_state) for t in ev.states["MovierecServiceDown"].history]
    assert moves == [(0, PENDING), (1, INACTIVE), (10, PENDING), (40, FIRING), (41, INACTIVE)]


def test_no_model_fires_after_two_minutes_up_without_one() -> None:
    ev = Evaluator()
    for at in range(0, 181, 30):
        ev.observe_scrape(SERVICE_JOB, service_text(0, model=at >= 150), at)
        got = state(ev, at, "MovierecNoModel")
        assert got == {0: PENDING, 90: PENDING, 120: FIRING, 150: INACTIVE}.get(at, got)


def test_reject_spike_against_the_last_hours_baseline() -> None:
    ev = Evaluator()
    rejected = 0
    for minute in range(71):  # 1000 lines a minute; 1 reject a minute, then 50 from 61 on
        rejected += 50 if minute > 60 else (1 if minute else 0)
        ev.observe_scrape(INGEST_JOB, ingest_text(1000 * minute, rejected), 60.0 * minute)
        ev.evaluate(60.0 * minute)
    # Last 5 minutes: 250 of 5000 lines; last hour: 550 + 50 (minutes 11-70) of 60,000.
    recent, hour = 250 / 5000, (10 * 50 + 50) / 60_000
    assert ev.series("reject_rate_baseline_ratio", 4200) == pytest.approx(recent / hour)
    assert state(ev, 4200, "MovierecRejectSpike") == FIRING
    calm = Evaluator()
    for minute in range(71):
        calm.observe_scrape(INGEST_JOB, ingest_text(1000 * minute, 2 * minute), 60.0 * minute)
    assert calm.series("reject_rate_baseline_ratio", 4200) == pytest.approx(1.0)


def test_ingest_lag_and_its_absence() -> None:
    ev = Evaluator()
    assert ev.series("ingest_lag_seconds", 0) is None
    for at in range(0, 301, 60):
        ev.observe_scrape(INGEST_JOB, ingest_text(at, 0, lag=700), at)
        ev.evaluate(at)
    assert ev.series("ingest_lag_seconds", 300) == 700
    assert state(ev, 300, "MovierecIngestLag") == FIRING
    assert ev.series("ingest_lag_seconds", 300 + 301) is None  # older than the lookback


def test_conversion_against_the_same_hour_a_day_before() -> None:
    day, hour = 86_400, 3600
    start = 1_767_225_600  # an hour's start
    ev = Evaluator()
    ev.observe_online({start: 0.30, start + hour: 0.30}, at=start + 2 * hour)
    assert ev.series("conversion_ratio_vs_day_before", start + 2 * hour) is None  # no day before
    ev.observe_online({start + day: 0.15}, at=start + day + hour)
    assert ev.series("conversion_ratio_vs_day_before", start + day + hour) == 0.5
    assert state(ev, start + day + hour, "MovierecConversionDrop") == PENDING
    assert state(ev, start + day + hour + 1800, "MovierecConversionDrop") == FIRING
    ev.observe_online({start + day + hour: 0.25}, at=start + day + 2 * hour)
    assert ev.series("conversion_ratio_vs_day_before", start + day + 2 * hour) == pytest.approx(
        0.25 / 0.30
    )
    assert state(ev, start + day + 2 * hour, "MovierecConversionDrop") == INACTIVE


def test_a_restart_keeps_the_samples_and_the_pending_clock() -> None:
    ev = Evaluator()
    ev.observe_scrape(SERVICE_JOB, service_text(0), 0)
    ev.observe_scrape(SERVICE_JOB, None, 10)
    ev.evaluate(10)
    ev.observe_online({3600: 0.3}, at=7200)
    saved = json.loads(json.dumps(ev.to_json(), allow_nan=False))  # plain JSON, no NaN
    again = Evaluator.from_json(saved)
    assert again.to_json() == ev.to_json()
    assert state(again, 39, "MovierecServiceDown") == PENDING  # pending since 10 s, kept
    assert state(again, 40, "MovierecServiceDown") == FIRING
    assert [t.at for t in again.states["MovierecServiceDown"].history] == [10, 40]


def test_history_is_bounded_and_time_ordered() -> None:
    ev = Evaluator(max_samples=5)
    for at in (5, 1, 4, 2, 3, 7, 6):
        ev.observe_scrape(SERVICE_JOB, service_text(at), at)
    assert [t for t, _ in ev.samples[SERVICE_JOB]] == [3, 4, 5, 6, 7]
    ev.evaluate(at=7 + ev.retention + 3.5)
    assert ev.samples[SERVICE_JOB] == []


counters = st.lists(st.integers(min_value=0, max_value=10**6), min_size=2, max_size=40)


@given(counters)
def test_a_counter_reset_never_yields_a_negative_increase(values: list[int]) -> None:
    grew = promql.increase([(float(i), float(v)) for i, v in enumerate(values)])
    assert grew is not None and grew >= 0
    if values == sorted(values):
        assert grew == values[-1] - values[0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 20), st.booleans()), min_size=1, max_size=40))
def test_the_alert_never_fires_before_for_has_passed(steps: list[tuple[int, bool]]) -> None:
    """Scrapes every few seconds, each failing or not; after each evaluation the state is
    what Prometheus's would be: firing exactly when every evaluation since the condition
    last became true has held it, for at least `for`."""
    rule = by_name("MovierecServiceDown")
    ev = Evaluator()
    ev.observe_scrape(SERVICE_JOB, service_text(0), 0)
    ev.evaluate(0)
    at, true_since = 0, None
    for gap, down in steps:
        at += gap
        ev.observe_scrape(SERVICE_JOB, None if down else service_text(0), at)
        got = state(ev, at, rule.name)
        true_since = (true_since if true_since is not None else at) if down else None
        if true_since is None:
            assert got == INACTIVE
        elif at - true_since >= rule.for_seconds:
            assert got == FIRING
        else:
            assert got == PENDING
