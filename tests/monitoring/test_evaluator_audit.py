"""The evaluator's newer series on known answers: the catalogue's error share from
ingestion's scrapes (the incident drill's alert), the service's answer log, and the
audit's figures."""

from __future__ import annotations

import json

import pytest

from movierec.monitoring.evaluator import FIRING, INACTIVE, PENDING, Evaluator
from movierec.monitoring.rules import AUDIT_SERIES, INGEST_JOB, SERVICE_JOB
from movierec.serving.metrics import Metrics


def catalogue_text(requests: float, errors: float) -> str:
    return (
        "# TYPE movierec_ingest_catalogue_requests_total counter\n"
        f"movierec_ingest_catalogue_requests_total {requests}\n"
        "# TYPE movierec_ingest_catalogue_errors_total counter\n"
        f"movierec_ingest_catalogue_errors_total {errors}\n"
    )


def state(evaluator: Evaluator, at: float, name: str) -> str:
    return next(a for a in evaluator.evaluate(at) if a.name == name).state


def test_an_api_outage_fires_after_two_minutes_of_failing_requests() -> None:
    ev = Evaluator()
    requests = errors = 0
    states = {}
    for minute in range(12):  # healthy for 4 minutes, then 9 of every 10 requests fail
        requests += 100 if minute < 5 else 10
        errors += 0 if minute < 5 else 9
        ev.observe_scrape(INGEST_JOB, catalogue_text(requests, errors), 60.0 * minute)
        states[minute] = state(ev, 60.0 * minute, "MovierecCatalogueFailing")
    assert states[4] == INACTIVE
    # Minute 7: the last 5 minutes hold 3 failing minutes (27 of 230): still under half.
    assert ev.series("catalogue_error_share_5m", 420) == pytest.approx(27 / 230)
    first_pending = min(m for m, s in states.items() if s == PENDING)
    assert ev.series("catalogue_error_share_5m", 60.0 * first_pending) > 0.5
    assert states[first_pending + 1] == PENDING and states[first_pending + 2] == FIRING


def test_a_few_failures_among_many_answers_do_not_fire() -> None:
    ev = Evaluator()
    for minute in range(15):
        ev.observe_scrape(INGEST_JOB, catalogue_text(100 * minute, 40 * minute), 60.0 * minute)
        assert state(ev, 60.0 * minute, "MovierecCatalogueFailing") == INACTIVE
    assert ev.series("catalogue_error_share_5m", 840) == pytest.approx(0.4)


def streak_text(streak: int) -> str:
    return (
        "# TYPE movierec_ingest_catalogue_failure_streak gauge\n"
        f"movierec_ingest_catalogue_failure_streak {streak}\n"
    )


def test_an_unbroken_run_of_failures_fires_after_two_minutes_and_noise_does_not() -> None:
    # The promtool test's outage (deploy/prometheus/movierec-rules.test.yml), minute by minute.
    ev = Evaluator()
    states = []
    for minute, streak in enumerate([0, 1, 0, 14, 15, 16, 17, 17, 18, 0]):
        ev.observe_scrape(INGEST_JOB, streak_text(streak), 60.0 * minute)
        states.append(state(ev, 60.0 * minute, "MovierecCatalogueUnreachable"))
    assert ev.series("catalogue_failure_streak", 300) == 16
    assert states == [INACTIVE] * 3 + [PENDING, PENDING] + [FIRING] * 4 + [INACTIVE]
    ev = Evaluator()
    for minute, streak in enumerate([0, 3, 10, 2, 0, 7, 0]):  # at most ten: the API's noise
        ev.observe_scrape(INGEST_JOB, streak_text(streak), 60.0 * minute)
        assert state(ev, 60.0 * minute, "MovierecCatalogueUnreachable") == INACTIVE


def test_a_service_that_cannot_write_its_answer_log_fires_after_five_minutes() -> None:
    # The service's own /metrics text, so the name the rule reads is the one it exports.
    metrics, ev = Metrics(), Evaluator()
    states = []
    for minute, failing in enumerate([False, True, True, True, True, True, True, True, False]):
        metrics.telemetry_failing = failing
        ev.observe_scrape(SERVICE_JOB, metrics.render().decode(), 60.0 * minute)
        states.append(state(ev, 60.0 * minute, "MovierecAnswerLogFailing"))
    assert ev.series("answer_log_failing", 0) == 0 and ev.series("answer_log_failing", 60) == 1
    assert states == [INACTIVE] + [PENDING] * 5 + [FIRING] * 2 + [INACTIVE]


@pytest.mark.parametrize(
    ("series", "alert", "bad", "good"),
    [
        ("fairness_worst_ratio", "MovierecFairnessGap", 0.7, 0.85),
        ("shilling_suspects", "MovierecShillingSuspected", 1, 0),
        ("scraping_detections", "MovierecScrapingSuspected", 2, 0),
        ("adult_violations", "MovierecAdultToMinor", 1, 0),
    ],
)
def test_the_audit_alerts_fire_on_the_audit_figures_and_clear(
    series: str, alert: str, bad: float, good: float
) -> None:
    ev = Evaluator()
    assert state(ev, 0, alert) == INACTIVE  # no audit yet: no value, not firing
    ev.observe_audit({series: good})
    assert state(ev, 10, alert) == INACTIVE
    ev.observe_audit({series: bad})
    assert state(ev, 20, alert) == FIRING  # `for` 0: the audit already judged a whole day
    again = Evaluator.from_json(json.loads(json.dumps(ev.to_json(), allow_nan=False)))
    assert again.series(series, 30) == bad  # kept across a restart
    ev.observe_audit({series: good})
    assert state(ev, 30, alert) == INACTIVE


def test_an_audit_figure_not_known_is_no_value() -> None:
    ev = Evaluator()
    ev.observe_audit({"adult_violations": None, "unrelated": 5.0})
    assert set(ev.audit) == set(AUDIT_SERIES)
    assert all(ev.series(name, 0) is None for name in AUDIT_SERIES)
