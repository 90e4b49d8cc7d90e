"""The alert rules of rules.py evaluated without Prometheus: from scrapes of the service and
the ingestion (their /metrics text) and the online conversion per hour.

It keeps a bounded, time-ordered history of scraped samples per job (only the series the
rules read, for the longest window plus slack), computes each rule's series as the rule's
PromQL would (promql.py), and runs each rule through Prometheus's states: inactive, pending
while the condition holds for less than `for`, firing after; every change is recorded with
its time and value. `to_json` and `from_json` carry the whole of it across a restart, so a
pending alert keeps its clock.

    evaluator = Evaluator()
    evaluator.observe_scrape("movierec", text_or_None, at=time.time())
    evaluator.observe_online({hour_start: conversion, ...}, at=time.time())
    for alert in evaluator.evaluate(at=time.time()): ...
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from movierec.monitoring import promql
from movierec.monitoring.rules import (
    AUDIT_SERIES,
    DEADLINE_SECONDS,
    INGEST_JOB,
    REJECT_BASELINE_FLOOR,
    RULES,
    SERVICE_JOB,
    Rule,
)

Labels = frozenset[tuple[str, str]]
Key = tuple[str, Labels]  # (sample name, labels)
Sample = dict[Key, float]

# Only what the rules read is kept: a scrape of the service holds hundreds of samples.
KEPT = frozenset(
    (
        "movierec_requests_total",
        "movierec_request_seconds_bucket",
        "movierec_request_seconds_count",
        "movierec_model_info",
        "movierec_answer_log_failing",
        "movierec_ingest_lines_total",
        "movierec_ingest_rejected_total",
        "movierec_ingest_lag_seconds",
        "movierec_ingest_catalogue_requests_total",
        "movierec_ingest_catalogue_errors_total",
        "movierec_ingest_catalogue_failure_streak",
    )
)
LOOKBACK = 300.0  # seconds a scraped value stays current, as Prometheus's lookback delta
RETENTION = 3600.0 + 2 * LOOKBACK  # the longest window (1 h) and some slack
MAX_SAMPLES = 20_000  # per job: a scrape a second for the retention, with room to spare
MAX_TRANSITIONS = 200  # per rule
DAY = 86_400
INACTIVE, PENDING, FIRING = "inactive", "pending", "firing"


@dataclass(frozen=True)
class Transition:
    at: float
    from_state: str
    to_state: str
    value: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "from": self.from_state,
            "to": self.to_state,
            "value": _num(self.value),
        }


@dataclass
class AlertState:
    name: str
    state: str = INACTIVE
    since: float | None = None  # when it entered this state (None: never left inactive)
    value: float | None = None  # the rule's series at the last evaluation
    summary: str = ""
    severity: str = ""
    history: list[Transition] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "since": self.since,
            "value": _num(self.value),
            "summary": self.summary,
            "severity": self.severity,
            "history": [t.to_json() for t in self.history],
        }


class Evaluator:
    def __init__(
        self,
        rules: tuple[Rule, ...] = RULES,
        retention: float = RETENTION,
        max_samples: int = MAX_SAMPLES,
    ) -> None:
        self.rules = rules
        self.retention = retention
        self.max_samples = max_samples
        # job -> time-ordered (at, sample); a sample of None is a failed scrape.
        self.samples: dict[str, list[tuple[float, Sample | None]]] = {}
        self.conversion: dict[int, float] = {}  # hour start (Unix seconds) -> conversion
        self.audit: dict[str, float | None] = {}  # the audit's latest figures, by series
        self.states = {r.name: AlertState(r.name, summary=r.summary, severity=r.severity)
                       for r in rules}  # fmt: skip

    # ---- input ------------------------------------------------------------------------------
    def observe_scrape(self, job: str, text: str | None, at: float) -> None:
        """One scrape of `job` at `at`: its text, or None when the scrape failed. Text that
        does not parse counts as a failed scrape, as it does for Prometheus."""
        sample = None
        if text is not None:
            try:
                sample = _parse(text)
            except ValueError:
                sample = None
        history = self.samples.setdefault(job, [])
        bisect.insort(history, (at, sample), key=lambda item: item[0])
        if len(history) > self.max_samples:
            del history[: len(history) - self.max_samples]

    def observe_audit(self, figures: dict[str, float | None]) -> None:
        """The audit's latest figures, by series (rules.AUDIT_SERIES); None: not known."""
        self.audit = {name: figures.get(name) for name in AUDIT_SERIES}

    def observe_online(self, conversion_by_hour: dict[int, float], at: float) -> None:
        """Conversion of complete hours, by the hour's start in Unix seconds."""
        self.conversion.update({int(h): float(v) for h, v in conversion_by_hour.items()})
        for hour in [h for h in self.conversion if h < at - 2 * DAY]:
            del self.conversion[hour]

    # ---- the rules' series ------------------------------------------------------------------
    def series(self, name: str, at: float) -> float | None:
        """The value of one series of rules.SERIES at `at` (None: no value, as an empty
        PromQL result)."""
        if name == "service_up":
            return 0.0 if self._latest(SERVICE_JOB, at) is None else 1.0
        if name == "model_loaded":
            sample = self._latest(SERVICE_JOB, at)
            if sample is None:
                return None
            return 1.0 if any(k[0] == "movierec_model_info" for k in sample) else 0.0
        if name == "availability_1h":
            return self._availability(at)
        if name == "latency_p99_5m":
            buckets: dict[float, float] = {}
            for (sample_name, labels), grew in self._increases(SERVICE_JOB, at, 300).items():
                if sample_name == "movierec_request_seconds_bucket":
                    bound = promql.bucket_bound(dict(labels)["le"])
                    buckets[bound] = buckets.get(bound, 0.0) + grew
            return promql.histogram_quantile(0.99, buckets)
        if name == "reject_rate_baseline_ratio":
            recent = self._reject_share(at, 300)
            baseline = promql.clamp_min(self._reject_share(at, 3600), REJECT_BASELINE_FLOOR)
            return promql.divide(recent, baseline)
        if name == "ingest_lag_seconds":
            return self._latest_max(INGEST_JOB, "movierec_ingest_lag_seconds", at)
        if name == "catalogue_error_share_5m":
            grew = self._increases(INGEST_JOB, at, 300)
            errors = promql.total(
                v for k, v in grew.items() if k[0] == "movierec_ingest_catalogue_errors_total"
            )
            asked = promql.total(
                v for k, v in grew.items() if k[0] == "movierec_ingest_catalogue_requests_total"
            )
            return promql.divide(errors, asked)
        if name == "catalogue_failure_streak":
            return self._latest_max(INGEST_JOB, "movierec_ingest_catalogue_failure_streak", at)
        if name == "answer_log_failing":
            return self._latest_max(SERVICE_JOB, "movierec_answer_log_failing", at)
        if name in AUDIT_SERIES:
            return self.audit.get(name)
        if name == "conversion_ratio_vs_day_before":
            hours = [h for h in self.conversion if h <= at]
            if not hours or max(hours) - DAY not in self.conversion:
                return None
            latest = max(hours)
            return promql.divide(self.conversion[latest], self.conversion[latest - DAY])
        raise ValueError(f"unknown series {name!r}")

    def _latest_max(self, job: str, sample_name: str, at: float) -> float | None:
        """The largest value of a gauge in the job's current scrape, as max() in PromQL."""
        sample = self._latest(job, at)
        values = [v for k, v in (sample or {}).items() if k[0] == sample_name]
        return max(values) if values else None

    def _availability(self, at: float) -> float | None:
        grew = self._increases(SERVICE_JOB, at, 3600)

        def summed(name: str, **want: str) -> float | None:
            return promql.total(
                v for (n, labels), v in grew.items()
                if n == name and all(dict(labels).get(k) == w for k, w in want.items())
            )  # fmt: skip

        answered = summed("movierec_requests_total", route="recommend", status="200")
        late = promql.subtract(
            summed("movierec_request_seconds_count"),
            summed("movierec_request_seconds_bucket", le=str(DEADLINE_SECONDS)),
        )
        asked = summed("movierec_requests_total", route="recommend")
        return promql.divide(promql.subtract(answered, late), asked)

    def _reject_share(self, at: float, window: float) -> float | None:
        grew = self._increases(INGEST_JOB, at, window)
        rejected = promql.total(
            v for k, v in grew.items() if k[0] == "movierec_ingest_rejected_total"
        )
        lines = promql.total(v for k, v in grew.items() if k[0] == "movierec_ingest_lines_total")
        return promql.divide(rejected, lines)

    def _latest(self, job: str, at: float) -> Sample | None:
        """The newest scrape of `job` at or before `at` within the lookback (None: it failed,
        or none is recent enough; Prometheus's `up` is then 0 or absent)."""
        history = self.samples.get(job, [])
        i = bisect.bisect_right(history, at, key=lambda item: item[0])
        if i == 0 or history[i - 1][0] < at - LOOKBACK:
            return None
        return history[i - 1][1]

    def _increases(self, job: str, at: float, window: float) -> dict[Key, float]:
        """Each counter's increase over [at - window, at], from the successful scrapes."""
        history = self.samples.get(job, [])
        lo = bisect.bisect_left(history, at - window, key=lambda item: item[0])
        hi = bisect.bisect_right(history, at, key=lambda item: item[0])
        points: dict[Key, list[tuple[float, float]]] = {}
        for t, sample in history[lo:hi]:
            for key, value in (sample or {}).items():
                points.setdefault(key, []).append((t, value))
        grew = {key: promql.increase(p) for key, p in points.items()}
        return {key: g for key, g in grew.items() if g is not None}

    # ---- the rules' states ------------------------------------------------------------------
    def evaluate(self, at: float) -> list[AlertState]:
        """Every rule's state at `at`, after applying its condition and `for`."""
        for history in self.samples.values():
            keep = bisect.bisect_left(history, at - self.retention, key=lambda item: item[0])
            del history[:keep]
        for rule in self.rules:
            state = self.states[rule.name]
            value = self.series(rule.spec.series, at)
            state.value = value
            if not rule.spec.holds(value):
                if state.state != INACTIVE:
                    _move(state, INACTIVE, at, value)
            elif state.state == INACTIVE:
                _move(state, PENDING, at, value)
                if rule.for_seconds <= 0:
                    _move(state, FIRING, at, value)
            elif (
                state.state == PENDING
                and state.since is not None
                and at - state.since >= rule.for_seconds
            ):
                _move(state, FIRING, at, value)
        return [self.states[r.name] for r in self.rules]

    # ---- persistence ------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "samples": {
                job: [[t, _sample_json(s)] for t, s in history]
                for job, history in self.samples.items()
            },
            "conversion": {str(h): v for h, v in sorted(self.conversion.items())},
            "audit": {k: _num(v) for k, v in sorted(self.audit.items())},
            "states": {name: s.to_json() for name, s in self.states.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], rules: tuple[Rule, ...] = RULES) -> Evaluator:
        """An evaluator carrying on from `to_json`'s output; rules added since start inactive
        and the state of rules since removed is dropped."""
        evaluator = cls(rules=rules)
        for job, history in data.get("samples", {}).items():
            evaluator.samples[job] = [
                (float(t), None if s is None else {(n, frozenset(lab.items())): float(v)
                                                   for n, lab, v in s})
                for t, s in history
            ]  # fmt: skip
        evaluator.conversion = {int(h): float(v) for h, v in data.get("conversion", {}).items()}
        evaluator.audit = {k: _unnum(v) for k, v in data.get("audit", {}).items()}
        for name, saved in data.get("states", {}).items():
            if name not in evaluator.states:
                continue
            state = evaluator.states[name]
            state.state = saved["state"]
            state.since = saved.get("since")
            state.value = _unnum(saved.get("value"))
            state.history = [
                Transition(t["at"], t["from"], t["to"], _unnum(t.get("value")))
                for t in saved.get("history", [])
            ]
        return evaluator


def _move(state: AlertState, to: str, at: float, value: float | None) -> None:
    state.history.append(Transition(at, state.state, to, value))
    del state.history[:-MAX_TRANSITIONS]
    state.state, state.since = to, at


def _parse(text: str) -> Sample:
    sample: Sample = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in KEPT:
                sample[(s.name, frozenset(s.labels.items()))] = float(s.value)
    return sample


def _sample_json(sample: Sample | None) -> list[list[Any]] | None:
    if sample is None:
        return None
    # Sorted on the labels' sorted pairs: a frozenset's own order depends on the hash seed.
    rows = sorted((name, sorted(labels), value) for (name, labels), value in sample.items())
    return [[name, dict(labels), value] for name, labels, value in rows]


def _num(value: float | None) -> float | str | None:
    """JSON has no NaN or infinities: they are written as Prometheus writes them."""
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")


def _unnum(value: float | str | None) -> float | None:
    return None if value is None else float(value)  # float() reads "NaN", "+Inf", "-Inf"
