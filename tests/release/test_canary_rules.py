"""The canary's decision rules on handmade figures whose right answer is known, and their
invariants as properties: more errors or more latency never turn an abort into a
promotion, and a candidate that converts exactly as control is never aborted for its
conversion before the horizon."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.online import stats
from movierec.release.canary_rules import ArmFigures, CanaryConfig, decide, figures_of

CONFIG = CanaryConfig(
    min_requests=200, max_requests=1000, margin=0.02, max_p99_ms=300.0,
    max_error_rate=0.01, min_latency_requests=50,
)  # fmt: skip


def arm(
    requests: int,
    followed: int,
    judged: int | None = None,
    p99: float | None = 12.0,
    errors: float = 0.0,
    timeouts: float = 0.0,
) -> ArmFigures:
    judged = requests if judged is None else judged
    return ArmFigures(
        version="v",
        requests=requests,
        availability=1 - errors - timeouts if requests else None,
        error_rate=errors if requests else None,
        timeout_rate=timeouts if requests else None,
        latency_p99_ms=p99 if requests else None,
        judged=judged,
        followed=followed,
        conversion=followed / judged if judged else None,
        interval=stats.wilson(followed, judged),
    )


def compare(control: ArmFigures, candidate: ArmFigures) -> dict[str, Any]:
    """The experiment report's comparison of conversion, by the real statistics."""
    return stats.two_proportions(
        control.followed, control.judged, candidate.followed, candidate.judged,
        CONFIG.min_effect, CONFIG.alpha, 0.8,
    )  # fmt: skip


def decided(control: ArmFigures, candidate: ArmFigures, config: CanaryConfig = CONFIG) -> Any:
    return decide(control, candidate, compare(control, candidate), config)


def test_a_young_canary_waits() -> None:
    verdict = decided(arm(160, 40), arm(40, 4))
    assert (verdict.decision, verdict.rule) == ("wait", "wait")
    assert "40 of 200 candidate requests" in verdict.reasons[0]


def test_a_slow_candidate_is_aborted_once_it_has_enough_requests() -> None:
    control = arm(400, 100)
    assert decided(control, arm(49, 12, p99=640.0)).decision == "wait"
    verdict = decided(control, arm(50, 12, p99=640.0))
    assert (verdict.decision, verdict.rule) == ("abort", "health")
    assert "p99 latency is 640 ms, above the limit of 300 ms" in verdict.reasons[0]


def test_failures_count_against_control_s_own() -> None:
    control = arm(400, 100, errors=0.02)
    at_limit = decided(control, arm(100, 25, errors=0.02, timeouts=0.01))
    assert at_limit.decision == "wait"  # 3% against 2%: exactly the allowed point above
    verdict = decided(control, arm(100, 25, errors=0.02, timeouts=0.02))
    assert (verdict.decision, verdict.rule) == ("abort", "health")
    assert "4.00% of its requests against control's 2.00%" in verdict.reasons[0]


def test_a_timing_out_candidate_gets_both_reasons() -> None:
    verdict = decided(arm(400, 100), arm(80, 0, judged=0, p99=601.0, timeouts=1.0))
    assert verdict.decision == "abort" and len(verdict.reasons) == 2


def test_worse_conversion_aborts_only_after_min_requests() -> None:
    control = arm(800, 240)  # 30%
    assert decided(control, arm(150, 5)).decision == "wait"  # worse, but too young
    verdict = decided(control, arm(200, 8))  # 4%
    assert (verdict.decision, verdict.rule) == ("abort", "conversion")
    assert "converts worse" in verdict.reasons[0]


def test_better_conversion_promotes() -> None:
    verdict = decided(arm(800, 120), arm(200, 110))  # 15% against 55%
    assert (verdict.decision, verdict.rule) == ("promote", "conversion")


def test_the_horizon_promotes_what_is_not_worse_by_the_margin() -> None:
    control = arm(4000, 1000)
    same = arm(1000, 250)
    comparison = {"verdict": "not yet known", "interval": [-0.019, 0.03]}
    assert decide(control, same, comparison, CONFIG).decision == "promote"
    comparison = {"verdict": "not yet known", "interval": [-0.021, 0.03]}
    verdict = decide(control, same, comparison, CONFIG)
    assert (verdict.decision, verdict.rule) == ("abort", "horizon")
    assert "could not show it is not worse" in verdict.reasons[0]
    # Before the horizon the same figures wait.
    assert decide(control, replace(same, requests=999), comparison, CONFIG).decision == "wait"


def test_the_horizon_without_judged_answers_aborts() -> None:
    comparison = {"verdict": "not yet known", "reason": "an arm has no judged answers yet"}
    verdict = decide(arm(4000, 1000), arm(1000, 0, judged=0), comparison, CONFIG)
    assert verdict.decision == "abort" and "no judged answers" in verdict.reasons[0]


def test_figures_are_read_from_both_reports() -> None:
    online = {
        "window_minutes": 30,
        "arms": {"exp-1/canary": {"requests": 90, "availability": 0.9, "error_rate": 0.0,
                                   "timeout_rate": 0.1, "latency_p99_ms": 601}},
    }  # fmt: skip
    report = {
        "arms": {"canary": {"version": "v9", "conversion@30m": {
            "value": 0.25, "interval": [0.2, 0.3], "judged": 80, "followed": 20}}},
    }  # fmt: skip
    read = figures_of(online, report, "exp-1", "canary")
    assert read == ArmFigures("v9", 90, 0.9, 0.0, 0.1, 601, 80, 20, 0.25, [0.2, 0.3])
    assert read.failure_rate == pytest.approx(0.1)


counts = st.integers(0, 3000)


@st.composite
def two_arms(draw: st.DrawFn) -> tuple[ArmFigures, ArmFigures]:
    n_c, n_t = draw(st.integers(1, 6000)), draw(counts)
    share = st.floats(0, 0.2, allow_nan=False)
    control = arm(
        n_c, draw(st.integers(0, n_c)), p99=draw(st.floats(1, 900)),
        errors=draw(share), timeouts=draw(share),
    )  # fmt: skip
    candidate = arm(
        n_t, draw(st.integers(0, n_t)), p99=draw(st.floats(1, 900)),
        errors=draw(share), timeouts=draw(share),
    )  # fmt: skip
    return control, candidate


@settings(max_examples=300, deadline=None)
@given(arms=two_arms(), more=st.floats(0, 0.5), slower=st.floats(0, 2000))
def test_more_errors_or_latency_never_turn_an_abort_into_a_promotion(
    arms: tuple[ArmFigures, ArmFigures], more: float, slower: float
) -> None:
    control, candidate = arms
    before = decided(control, candidate).decision
    worse_off = [
        replace(candidate, error_rate=(candidate.error_rate or 0) + more),
        replace(candidate, latency_p99_ms=(candidate.latency_p99_ms or 0) + slower),
    ]
    for changed in worse_off:
        after = decided(control, changed).decision
        if before == "abort":
            assert after == "abort"
        if after == "promote":
            assert before == "promote"


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 999), rate=st.floats(0, 1), ratio=st.integers(1, 8))
def test_a_candidate_converting_as_control_is_never_aborted_for_it_before_the_horizon(
    n: int, rate: float, ratio: int
) -> None:
    followed = round(rate * n)
    control, candidate = arm(n * ratio, followed * ratio), arm(n, followed)
    verdict = decided(control, candidate)
    assert verdict.decision in ("wait", "promote") or verdict.rule == "health"
    assert verdict.decision == "wait"  # equal health figures too: nothing to act on
