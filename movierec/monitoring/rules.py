"""The alert rules, once, as data: Prometheus gets them as a rules file rendered from here
(deploy/prometheus/movierec-rules.yml, `python -m movierec.monitoring.rules`), and the
built-in evaluator (evaluator.py) computes the same rules itself where no Prometheus runs.

Each rule carries its PromQL and a `Spec` the evaluator understands: one series from a
small fixed vocabulary (SERIES), a comparison and a threshold. The two must say the same
thing; the rules' promtool unit tests (deploy/prometheus/movierec-rules.test.yml) and the
evaluator's tests pin both to the same known answers.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from typing import Literal, get_args

# The jobs Prometheus scrapes: the service and the ingestion (its --metrics-port).
SERVICE_JOB = "movierec"
INGEST_JOB = "movierec-ingest"

# The site gives up after this many seconds: a later answer is a failed one.
DEADLINE_SECONDS = 0.6

Series = Literal[
    "availability_1h",  # share of /recommend answered 200 within the deadline, last hour
    "latency_p99_5m",  # p99 of every request's time, last 5 minutes
    "conversion_ratio_vs_day_before",  # online conversion this hour / same hour a day before
    "reject_rate_baseline_ratio",  # ingestion's reject share, 5 minutes / the last hour
    "ingest_lag_seconds",  # now minus the arrival of the newest committed line
    "model_loaded",  # 1 when the service answers from a model, 0 before (absent when down)
    "service_up",  # 1 when the service's last scrape succeeded, else 0
    "catalogue_error_share_5m",  # failed requests to the site's API / all, last 5 minutes
    "catalogue_failure_streak",  # requests to the site's API failed in a row, now
    "answer_log_failing",  # 1 while the service cannot write its answer log, else 0
    # From the monitor's audit (movierec/audit), as of its last run:
    "fairness_worst_ratio",  # the worst group's figure / everyone's, over the requirements
    "shilling_suspects",  # movies with a burst of new accounts against their baseline
    "scraping_detections",  # abnormal request patterns in the answer log
    "adult_violations",  # adult movies answered to minors (or to unknown ages, if barred)
]
# Series the monitor's audit step gives the evaluator (the rest come from scrapes).
AUDIT_SERIES = (
    "fairness_worst_ratio",
    "shilling_suspects",
    "scraping_detections",
    "adult_violations",
)
SERIES: tuple[str, ...] = get_args(Series)
Severity = Literal["critical", "warning"]

# Fairness requirements hold each group to this share of everyone's figure (docs/responsible.md).
FAIRNESS_MIN_RATIO = 0.8

# Requests failed in a row beyond which the API is down: at a 5% error rate (the API's
# normal noise, SPEC.md) eleven in a row happen about once in 10^14 requests.
CATALOGUE_FAILURE_STREAK = 10

_CATALOGUE_FAILING = """(
  sum(rate(movierec_ingest_catalogue_errors_total[5m]))
  / sum(rate(movierec_ingest_catalogue_requests_total[5m]))
)
> 0.5"""

# The reject-rate baseline never counts as below this share, so a clean hour (no rejects
# at all) does not turn the first stray line into a spike.
REJECT_BASELINE_FLOOR = 0.001


@dataclass(frozen=True)
class Spec:
    """What the built-in evaluator computes: `series op threshold` (no value: not firing)."""

    series: Series
    op: Literal["<", ">"]
    threshold: float

    def holds(self, value: float | None) -> bool:
        if value is None or math.isnan(value):  # no answer, as an empty result in PromQL
            return False
        return value < self.threshold if self.op == "<" else value > self.threshold


@dataclass(frozen=True)
class Rule:
    name: str
    expr: str
    for_seconds: float
    severity: Severity
    summary: str
    reason: str  # why it matters: the alert's description
    spec: Spec


_AVAILABILITY = f"""(
  sum(rate(movierec_requests_total{{route="recommend",status="200"}}[1h]))
  - (
    sum(rate(movierec_request_seconds_count[1h]))
    - sum(rate(movierec_request_seconds_bucket{{le="{DEADLINE_SECONDS}"}}[1h]))
  )
)
/ sum(rate(movierec_requests_total{{route="recommend"}}[1h]))
< 0.999"""

_REJECT_SPIKE = f"""(
  sum(rate(movierec_ingest_rejected_total[5m]))
  / sum(rate(movierec_ingest_lines_total[5m]))
)
/ clamp_min(
  sum(rate(movierec_ingest_rejected_total[1h])) / sum(rate(movierec_ingest_lines_total[1h])),
  {REJECT_BASELINE_FLOOR}
)
> 3"""

RULES: tuple[Rule, ...] = (
    Rule(
        name="MovierecServiceDown",
        expr=f'up{{job="{SERVICE_JOB}"}} == 0 or absent(up{{job="{SERVICE_JOB}"}})',
        for_seconds=30,
        severity="critical",
        summary="The recommendation service does not answer its scrapes",
        reason="Every call the site makes now fails: users see no recommendations at all.",
        spec=Spec("service_up", "<", 1),
    ),
    Rule(
        name="MovierecNoModel",
        expr=f'up{{job="{SERVICE_JOB}"}} == 1 unless on(job, instance) movierec_model_info',
        for_seconds=120,
        severity="critical",
        summary="The service is up but has no model loaded",
        reason="Without a model every /recommend answers 503: the service is up and useless. "
        "Loading takes seconds; minutes mean the registry has no loadable production version.",
        spec=Spec("model_loaded", "<", 1),
    ),
    Rule(
        name="MovierecAvailabilityLow",
        expr=_AVAILABILITY,
        for_seconds=300,
        severity="critical",
        summary="Less than 99.9% of /recommend answered 200 within 600 ms over the last hour",
        reason="The site gives up after 600 ms, so a late answer is a failed one; availability "
        "is what the site judges us by. Answers later than 600 ms on any route count as "
        "failures (the request histogram has no route label), so this errs on the safe side.",
        spec=Spec("availability_1h", "<", 0.999),
    ),
    Rule(
        name="MovierecLatencyHigh",
        expr="histogram_quantile(0.99, sum by (le) (rate(movierec_request_seconds_bucket[5m])))"
        " > 0.3",
        for_seconds=300,
        severity="warning",
        summary="p99 request time above 300 ms over 5 minutes",
        reason="Half the site's 600 ms budget gone at the 99th percentile: the network and a "
        "slow moment more and answers start to arrive too late.",
        spec=Spec("latency_p99_5m", ">", 0.3),
    ),
    Rule(
        name="MovierecConversionDrop",
        expr='movierec_online_conversion{window="1h"}'
        ' < (2/3) * movierec_online_conversion{window="1h"} offset 1d',
        for_seconds=1800,
        severity="warning",
        summary="Online conversion down by a third against the same hour a day before",
        reason="Users watch fewer of the movies we recommend: the model, its data or the "
        "fallbacks have got worse, even if every request still succeeds.",
        spec=Spec("conversion_ratio_vs_day_before", "<", 2 / 3),
    ),
    Rule(
        name="MovierecRejectSpike",
        expr=_REJECT_SPIKE,
        for_seconds=300,
        severity="warning",
        summary="Ingestion rejects lines at over three times its rate of the last hour",
        reason="A sudden rise in bad lines means the site's log changed or broke: rejected "
        "events never reach training, so the next model learns from a biased sample.",
        spec=Spec("reject_rate_baseline_ratio", ">", 3),
    ),
    Rule(
        name="MovierecIngestLag",
        expr=f'movierec_ingest_lag_seconds{{job="{INGEST_JOB}"}} > 600',
        for_seconds=300,
        severity="warning",
        summary="The newest committed log line arrived more than 10 minutes ago",
        reason="Ingestion has stalled or fallen behind (or the stream went quiet): training "
        "and the online figures then work from stale data.",
        spec=Spec("ingest_lag_seconds", ">", 600),
    ),
    Rule(
        name="MovierecAnswerLogFailing",
        expr=f'max(movierec_answer_log_failing{{job="{SERVICE_JOB}"}}) > 0',
        for_seconds=300,
        severity="warning",
        summary="A service cannot write its answer log",
        reason="Its answers go on but are not recorded: online conversion, the experiments' "
        "verdicts and the audit cannot see them, so a worse model would go unnoticed. The "
        "log's folder is read-only, missing or full (/healthz says which).",
        spec=Spec("answer_log_failing", ">", 0),
    ),
    Rule(
        name="MovierecCatalogueFailing",
        expr=_CATALOGUE_FAILING,
        for_seconds=120,
        severity="warning",
        summary="More than half of ingestion's requests to the site's API failed over 5 minutes",
        reason="Events on movies the catalogue cannot vouch for are stored provisionally, "
        "new users get no demographics and unknown movies are not rejected until the API "
        "answers again; a long outage leaves training with unvetted movies.",
        spec=Spec("catalogue_error_share_5m", ">", 0.5),
    ),
    Rule(
        name="MovierecCatalogueUnreachable",
        expr=f"max(movierec_ingest_catalogue_failure_streak) > {CATALOGUE_FAILURE_STREAK}",
        for_seconds=120,
        severity="warning",
        summary="The site's API has answered none of ingestion's last requests",
        reason="Ingestion pauses all lookups after a run of failures, so an outage thins "
        "the requests out and the error share stays low; an unbroken run of failures says "
        "the API is down. Events stay provisional and new users get no demographics until "
        "it answers again.",
        spec=Spec("catalogue_failure_streak", ">", CATALOGUE_FAILURE_STREAK),
    ),
    Rule(
        name="MovierecFairnessGap",
        expr=f"min(movierec_audit_fairness_worst_ratio) < {FAIRNESS_MIN_RATIO}",
        for_seconds=0,
        severity="warning",
        summary="A user group gets recommendations far worse than everyone's",
        reason="A fairness requirement is broken: some age group, gender, occupation or new "
        "users get less than 0.8 of everyone's NDCG@20 offline or conversion online "
        "(docs/responsible.md says which and why).",
        spec=Spec("fairness_worst_ratio", "<", FAIRNESS_MIN_RATIO),
    ),
    Rule(
        name="MovierecShillingSuspected",
        expr="max(movierec_audit_shilling_suspects) > 0",
        for_seconds=0,
        severity="warning",
        summary="A burst of new accounts is pushing one movie",
        reason="New accounts watching and rating one movie far above its baseline is the shape "
        "of a shilling campaign: unchecked, the next model recommends the target to "
        "everyone. The audit report names the movie and the accounts.",
        spec=Spec("shilling_suspects", ">", 0),
    ),
    Rule(
        name="MovierecScrapingSuspected",
        expr="max(movierec_audit_scraping_detections) > 0",
        for_seconds=0,
        severity="warning",
        summary="Requests look like a scraper or a flood, not the site's users",
        reason="Bursts of requests for ids that never watch anything, or long runs of "
        "consecutive ids, mean someone is copying our lists or loading the service; it "
        "costs capacity and pollutes the online figures.",
        spec=Spec("scraping_detections", ">", 0),
    ),
    Rule(
        name="MovierecAdultToMinor",
        expr="max(movierec_audit_adult_violations) > 0",
        for_seconds=0,
        severity="critical",
        summary="An adult movie was recommended to a minor",
        reason="The safety requirement allows none: the service's filter failed or the "
        "catalogue is wrong. The audit report lists the answers.",
        spec=Spec("adult_violations", ">", 0),
    ),
)


def duration(seconds: float) -> str:
    """Prometheus's duration syntax: the largest unit that divides it exactly."""
    whole = round(seconds)
    for unit, size in (("h", 3600), ("m", 60)):
        if whole and whole % size == 0:
            return f"{whole // size}{unit}"
    return f"{whole}s"


def render(rules: tuple[Rule, ...] = RULES) -> str:
    """The Prometheus rules file. Strings are written as JSON strings, which are valid YAML
    double-quoted scalars; expressions as literal blocks, so they read as written."""
    out = [
        "# Rendered from movierec/monitoring/rules.py by `python -m movierec.monitoring.rules`:",
        "# edit the rules there, then render this file again.",
        "groups:",
        "  - name: movierec",
        "    rules:",
    ]
    for rule in rules:
        out += [
            f"      - alert: {rule.name}",
            "        expr: |-",
            *(f"          {line}" for line in rule.expr.splitlines()),
            f"        for: {duration(rule.for_seconds)}",
            "        labels:",
            f"          severity: {json.dumps(rule.severity)}",
            "        annotations:",
            f"          summary: {json.dumps(rule.summary)}",
            f"          description: {json.dumps(rule.reason)}",
        ]
    return "\n".join(out) + "\n"


def by_name(name: str, rules: tuple[Rule, ...] = RULES) -> Rule:
    for rule in rules:
        if rule.name == name:
            return rule
    raise KeyError(name)


if __name__ == "__main__":
    sys.stdout.write(render())
