"""The canary's decision rules: pure functions of the figures, no I/O.

A canary splits users between `control` (production) and `canary` (the candidate). At
each step the figures of both arms decide, in this order:

    health      once the candidate has min_latency_requests requests: abort when its p99
                latency is above max_p99_ms, or its share of errors and timeouts exceeds
                control's by more than max_error_rate
    conversion  once it has min_requests requests: abort when the always-valid verdict
                (mSPRT, movierec/online/stats.py) says "worse"; promote when it says
                "better"
    horizon     at max_requests, decide once: promote when the lower end of the 95%
                interval of (candidate - control) conversion is above -margin (it is not
                worse by more than the margin), else abort: it could not be shown not worse
    otherwise   wait

`figures_of` reads an arm's figures out of the online report and the experiment report;
`decide` applies the rules; both are unit- and property-tested on handmade figures.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

from pydantic import Field

from movierec.config import SettingsGroup

Decision = Literal["none", "wait", "promote", "abort"]


class CanaryConfig(SettingsGroup):
    """How a canary release splits users and what decides it (`movierec canary`)."""

    share: float = Field(0.2, gt=0, lt=1, description="the candidate's share of users")
    min_requests: int = Field(
        200, ge=1, description="candidate requests before any decision on conversion"
    )
    max_requests: int = Field(
        5000,
        ge=1,
        description="the fixed horizon: at this many candidate requests, decide once by "
        "non-inferiority of conversion",
    )
    margin: float = Field(
        0.02,
        ge=0,
        lt=1,
        description="absolute conversion shortfall the horizon still accepts (0.02: two points)",
    )
    max_p99_ms: float = Field(300.0, gt=0, description="highest p99 latency of the candidate")
    max_error_rate: float = Field(
        0.01,
        ge=0,
        le=1,
        description="how far the candidate's share of errors and timeouts may exceed control's",
    )
    min_latency_requests: int = Field(
        50, ge=1, description="candidate requests before the latency and error rules apply"
    )
    alpha: float = Field(0.05, gt=0, lt=0.5, description="false-positive rate of the verdict")
    min_effect: float = Field(
        0.1, gt=0, description="smallest relative change of conversion worth detecting"
    )


@dataclass(frozen=True)
class ArmFigures:
    """What the rules read of one arm."""

    version: str
    requests: int
    availability: float | None
    error_rate: float | None
    timeout_rate: float | None
    latency_p99_ms: float | None
    judged: int
    followed: int
    conversion: float | None
    interval: list[float] | None

    @property
    def failure_rate(self) -> float:
        """Share of requests that failed: errors and timeouts (0 without requests)."""
        return (self.error_rate or 0.0) + (self.timeout_rate or 0.0)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    rule: str  # health, conversion, horizon or wait
    reasons: list[str]


def figures_of(
    online: dict[str, Any], report: dict[str, Any], experiment: str, arm: str
) -> ArmFigures:
    """An arm's figures: counts and latency from the online report, conversion with its
    interval from the experiment report."""
    conversion = f"conversion@{online['window_minutes']}m"
    figures = online["arms"].get(f"{experiment}/{arm}", {})
    judged = report["arms"][arm][conversion]
    return ArmFigures(
        version=report["arms"][arm]["version"],
        requests=int(figures.get("requests", 0)),
        availability=figures.get("availability"),
        error_rate=figures.get("error_rate"),
        timeout_rate=figures.get("timeout_rate"),
        latency_p99_ms=figures.get("latency_p99_ms"),
        judged=int(judged["judged"]),
        followed=int(judged["followed"]),
        conversion=judged["value"],
        interval=judged["interval"],
    )


def decide(
    control: ArmFigures, candidate: ArmFigures, comparison: dict[str, Any], config: CanaryConfig
) -> Verdict:
    """The step's decision on the figures of both arms and the conversion comparison
    (candidate against control: `verdict`, `interval` of the difference)."""
    n = candidate.requests
    if n >= config.min_latency_requests:
        reasons = []
        p99 = candidate.latency_p99_ms
        if p99 is not None and p99 > config.max_p99_ms:
            reasons.append(
                f"the candidate's p99 latency is {p99:g} ms, above the limit of "
                f"{config.max_p99_ms:g} ms"
            )
        excess = candidate.failure_rate - control.failure_rate
        if excess > config.max_error_rate:
            reasons.append(
                f"the candidate's errors and timeouts are {candidate.failure_rate:.2%} of its "
                f"requests against control's {control.failure_rate:.2%}: more than "
                f"{config.max_error_rate:.2%} above"
            )
        if reasons:
            return Verdict("abort", "health", reasons)
    verdict = comparison.get("verdict")
    if n >= config.min_requests:
        shown = _conversion(control, candidate)
        if verdict == "worse":
            return Verdict(
                "abort", "conversion", [f"the candidate converts worse than control ({shown})"]
            )
        if verdict == "better":
            return Verdict(
                "promote",
                "conversion",
                [f"the candidate converts better than control ({shown})"],
            )
    if n >= config.max_requests:
        return _horizon(control, candidate, comparison, config)
    waiting = f"{n} of {config.min_requests} candidate requests before a decision on conversion"
    if n >= config.min_requests:
        waiting = (
            f"no verdict yet ({verdict}) after {n} candidate requests; the horizon is "
            f"{config.max_requests}"
        )
    return Verdict("wait", "wait", [waiting])


def _horizon(
    control: ArmFigures, candidate: ArmFigures, comparison: dict[str, Any], config: CanaryConfig
) -> Verdict:
    interval = comparison.get("interval")
    shown = _conversion(control, candidate)
    if not interval:
        return Verdict(
            "abort",
            "horizon",
            [
                f"at the horizon of {config.max_requests} candidate requests there is no "
                f"conversion to compare ({comparison.get('reason', 'no judged answers')}): "
                "could not show it is not worse"
            ],
        )
    low = float(interval[0])
    if low > -config.margin:
        return Verdict(
            "promote",
            "horizon",
            [
                f"at the horizon of {config.max_requests} candidate requests the lower end "
                f"of (candidate - control) conversion, {low:+.4f}, is above -{config.margin:g}: "
                f"not worse by more than the margin ({shown})"
            ],
        )
    return Verdict(
        "abort",
        "horizon",
        [
            f"at the horizon of {config.max_requests} candidate requests the lower end of "
            f"(candidate - control) conversion, {low:+.4f}, is not above -{config.margin:g}: "
            f"could not show it is not worse ({shown})"
        ],
    )


def _conversion(control: ArmFigures, candidate: ArmFigures) -> str:
    def one(arm: ArmFigures) -> str:
        value = "n/a" if arm.conversion is None else f"{arm.conversion:.4f}"
        return f"{value} of {arm.judged}"

    return f"conversion {one(candidate)} against control's {one(control)}"
