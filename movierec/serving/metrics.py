"""The service's own numbers in the Prometheus text format (`GET /metrics`).

The hot path only bumps plain Python counters: request counters are touched by the event
loop thread alone, and the loader, freshness and telemetry threads each own theirs, so no
lock is taken per request. The HTTP layer counts into `http` (a ServerStats the service
hands to its server): every answer by status, the server's own refusals included, and
each request's time from its first byte read to the last byte of its answer written.
`prometheus_client` turns them into exposition text at scrape time, through a collector
that reads them, beside the library's process and platform collectors; it also escapes
label values, so any model version scrapes cleanly.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_PLAIN_0_0_4,
    CollectorRegistry,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from prometheus_client.utils import floatToGoString

from movierec.http.stats import LATENCY_BUCKETS, LatencyHistogram, ServerStats

if TYPE_CHECKING:
    from movierec.registry.versions import Registry

# Seconds: from well under a millisecond to the site's 600 ms limit, and beyond it.
BUCKETS = LATENCY_BUCKETS
_BUCKET_LABELS = [*(floatToGoString(bound) for bound in BUCKETS), "+Inf"]
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what generate_latest writes

# The HTTP layer's counters: (ServerStats key, metric name, help).
_HTTP_COUNTERS = (
    ("connections", "movierec_http_connections_total", "Connections accepted."),
    ("connections_rejected", "movierec_http_connections_refused_total",
     "Connections refused with a 503 at the connection cap."),
    ("connections_evicted", "movierec_http_connections_evicted_total",
     "Connections closed at the cap to admit a newcomer (idle the longest, or of an "
     "address over its share)."),
    ("connections_shed", "movierec_http_connections_shed_total",
     "Connections dropped because buffered input and output went over the memory bound."),
    ("bad_requests", "movierec_http_bad_requests_total",
     "Requests the HTTP layer refused itself (malformed, over a limit, a body where none is "
     "taken)."),
    ("timeouts", "movierec_http_timeouts_total",
     "Header, body and write deadlines that fired."),
    ("handler_errors", "movierec_http_handler_errors_total",
     "Handler failures answered with a 500."),
    ("turns_deferred", "movierec_http_deferred_turns_total",
     "Times a connection's pipelined requests were left for a later loop turn, so others "
     "were served in between."),
    ("backpressure_pauses", "movierec_http_backpressure_pauses_total",
     "Times a connection stopped being read because its answers went unread."),
)  # fmt: skip


class Metrics(Collector):
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()  # (route, status)
        self.answers: Counter[str] = Counter()  # model | fresh | segment | popular
        self.arm_answers: Counter[tuple[str, str, str]] = Counter()  # (experiment, arm, version)
        self.experiment_id = ""
        self.experiment_failures = 0
        # The time the handler took for /recommend (the server's own time is in `http`).
        self.handler_latency = LatencyHistogram()
        self.http = ServerStats()
        self.swaps = 0
        self.swap_failures = 0
        self.model_version = ""
        self.model_loaded_at = 0.0
        self.fresh_updates = 0
        self.fresh_events = 0
        self.fresh_failures = 0  # the stream failed and was reopened
        self.telemetry_written = 0
        self.telemetry_dropped = 0
        self.telemetry_failing = False  # the answer log's last write (or the check at start) failed
        self.telemetry_write_failures = 0
        # The adult filter (serving/safety.py): set with the service's rule, counted per answer.
        self.adult_enforced = False
        self.adult_movies = 0
        self.adult_filtered = 0  # held items (adult or not cleared) kept out of answers
        self.restricted_answers: Counter[str] = Counter()  # minor | unknown_age
        self.shard = "0/1"  # serving/shard.py: I/N, the users this process holds
        self.misrouted = 0  # requests for users of another shard (answered 421)
        self.started = time.time()
        self.training = TrainingFigures()  # replaced whole by the loader at each install
        # One registry per service, so two services in a process (tests) never share numbers.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def observe(self, seconds: float) -> None:
        """Count the handler's time for one /recommend answer."""
        self.handler_latency.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "movierec_requests_total",
            "HTTP requests answered, by route and status.",
            labels=("route", "status"),
        )
        for (route, status), count in sorted(self.requests.items()):
            requests.add_metric((route, str(status)), count)
        yield requests
        yield _histogram(
            "movierec_request_seconds",
            "Time from a request's first byte read to the last byte of its answer handed to "
            "the socket, every request the server answered.",
            self.http.latency,
        )
        yield _histogram(
            "movierec_handler_seconds",
            "Time the handler took to answer /recommend (part of movierec_request_seconds).",
            self.handler_latency,
        )
        yield from self._http()
        answers = CounterMetricFamily(
            "movierec_answers_total",
            "Lists answered, by where they came from (model, fresh: refreshed from recent "
            "events, segment and popular: fallbacks).",
            labels=("source",),
        )
        for source, count in sorted(self.answers.items()):
            answers.add_metric((source,), count)
        yield answers
        yield CounterMetricFamily(
            "movierec_fallbacks_total",
            "Answers for users the model does not know (segment plus popular).",
            value=self.answers["segment"] + self.answers["popular"],
        )
        yield from self._model()
        yield from self._experiment()
        yield from self._background()
        yield from self._safety()
        yield from self._shard()
        yield from self.training.collect()

    def _http(self) -> Iterator[Metric]:
        http = self.http
        responses = CounterMetricFamily(
            "movierec_http_responses_total",
            "Answers given, by status: the handler's and the HTTP layer's own (parse errors, "
            "limits, timeouts, the 503s of the connection cap and the memory bound).",
            labels=("status",),
        )
        for status, count in sorted(http.statuses.items()):
            responses.add_metric((str(status),), count)
        yield responses
        for key, name, documentation in _HTTP_COUNTERS:
            yield CounterMetricFamily(name, documentation, value=http.counters[key])
        yield GaugeMetricFamily(
            "movierec_http_open_connections", "Connections open now.", value=http.open_connections
        )
        yield GaugeMetricFamily(
            "movierec_http_buffered_bytes",
            "Bytes of request input and backed-up answers held now, all connections together.",
            value=http.buffered_bytes,
        )

    def _model(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "movierec_model_info", "The model version answering (none before the first load).",
            labels=("version",),
        )  # fmt: skip
        loaded = GaugeMetricFamily(
            "movierec_model_loaded_timestamp_seconds",
            "When the answering model was switched to, in Unix seconds.",
        )
        if self.model_version:
            info.add_metric((self.model_version,), 1)
            loaded.add_metric((), self.model_loaded_at)
        yield info
        yield loaded
        yield CounterMetricFamily(
            "movierec_model_swaps_total",
            "Model versions switched to without downtime.",
            value=self.swaps,
        )
        yield CounterMetricFamily(
            "movierec_model_swap_failures_total",
            "Versions refused (corrupt, incompatible).",
            value=self.swap_failures,
        )

    def _experiment(self) -> Iterator[Metric]:
        arms = CounterMetricFamily(
            "movierec_experiment_answers_total",
            "Answers given within an experiment, by experiment, arm and the version answering.",
            labels=("experiment", "arm", "version"),
        )
        for key, count in sorted(self.arm_answers.items()):
            arms.add_metric(key, count)
        yield arms
        info = GaugeMetricFamily(
            "movierec_experiment_info", "The experiment running (none: production answers all).",
            labels=("experiment",),
        )  # fmt: skip
        if self.experiment_id:
            info.add_metric((self.experiment_id,), 1)
        yield info
        yield CounterMetricFamily(
            "movierec_experiment_failures_total",
            "Experiments refused because an arm's version could not be loaded.",
            value=self.experiment_failures,
        )

    def _safety(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "movierec_adult_filter_enforced",
            "1 when a catalogue read tells which movies are adult and who is a minor, so they "
            "are kept apart; 0 when the service cannot (no catalogue, or none readable yet).",
            value=int(self.adult_enforced),
        )
        yield GaugeMetricFamily(
            "movierec_adult_movies",
            "Movies the catalogue marks adult, as of its last read.",
            value=self.adult_movies,
        )
        yield CounterMetricFamily(
            "movierec_adult_filtered_total",
            "Movies held back (adult, or not cleared by the catalogue) from answers to minors "
            "and users of unknown age.",
            value=self.adult_filtered,
        )
        restricted = CounterMetricFamily(
            "movierec_restricted_answers_total",
            "Answers given with adult movies kept out, by why: the user is a minor, or of "
            "unknown age (not in the catalogue, or no age).",
            labels=("age",),
        )
        for age, count in sorted(self.restricted_answers.items()):
            restricted.add_metric((age,), count)
        yield restricted

    def _shard(self) -> Iterator[Metric]:
        info = GaugeMetricFamily(
            "movierec_shard_info", "The shard this process serves (I/N; 0/1: unsharded).",
            labels=("shard",),
        )  # fmt: skip
        info.add_metric((self.shard,), 1)
        yield info
        yield CounterMetricFamily(
            "movierec_shard_misrouted_total",
            "Requests for users of another shard, refused with a 421 naming theirs.",
            value=self.misrouted,
        )

    def _background(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "movierec_fresh_events_total",
            "Watch and rate events freshness took in from the stream (future-dated ones left out).",
            value=self.fresh_events,
        )
        yield CounterMetricFamily(
            "movierec_fresh_failures_total",
            "Times the stream freshness follows failed and was reopened after a pause.",
            value=self.fresh_failures,
        )
        yield CounterMetricFamily(
            "movierec_fresh_updates_total",
            "Lists refreshed from events newer than the model.",
            value=self.fresh_updates,
        )
        yield CounterMetricFamily(
            "movierec_telemetry_written_total",
            "Answer records written to the answer log.",
            value=self.telemetry_written,
        )
        yield CounterMetricFamily(
            "movierec_telemetry_dropped_total",
            "Answer records dropped because the answer log's queue was full.",
            value=self.telemetry_dropped,
        )
        yield GaugeMetricFamily(
            "movierec_answer_log_failing",
            "1 while the answer log cannot be written (answers go on, unrecorded), else 0.",
            value=float(self.telemetry_failing),
        )
        yield CounterMetricFamily(
            "movierec_answer_log_write_failures_total",
            "Writes of the answer log that failed (its folder missing, read-only or full).",
            value=self.telemetry_write_failures,
        )
        yield GaugeMetricFamily(
            "movierec_uptime_seconds",
            "Seconds since the service started.",
            value=time.time() - self.started,
        )


@dataclass(frozen=True)
class TrainingFigures:
    """What the registry says about the version answering, read once when the loader
    installs it (never at scrape time: a scrape must not wait on the disk)."""

    runs: int | None = None  # versions registered, as of the install
    training_seconds: float | None = None
    trained_at: float | None = None  # Unix seconds
    offline: dict[str, float] = field(default_factory=dict)  # metric -> score

    @classmethod
    def read(cls, registry: Registry, version: str) -> TrainingFigures:
        """The figures of `version`; a provenance without a figure leaves that one out."""
        provenance = registry.provenance(version)
        seconds = provenance.get("training_seconds")
        offline = provenance.get("offline_metrics") or {}
        return cls(
            runs=len(registry.read()["versions"]),
            training_seconds=float(seconds) if isinstance(seconds, int | float) else None,
            trained_at=_unix_seconds(provenance.get("trained_at")),
            offline={
                name: float(score)
                for name, score in offline.items()
                if isinstance(score, int | float)
                and not isinstance(score, bool)
                and math.isfinite(score)
            },
        )

    def collect(self) -> Iterator[Metric]:
        # Absent rather than zero when unknown: a zero would read as a real figure.
        runs = CounterMetricFamily(
            "movierec_training_runs",
            "Model versions registered in the registry (one per kind a training run fits), "
            "as of the last install.",
        )
        if self.runs is not None:
            runs.add_metric((), self.runs)
        yield runs
        seconds = GaugeMetricFamily(
            "movierec_model_training_seconds",
            "Seconds the answering version took to fit, from its provenance.",
        )
        if self.training_seconds is not None:
            seconds.add_metric((), self.training_seconds)
        yield seconds
        trained = GaugeMetricFamily(
            "movierec_model_trained_timestamp_seconds",
            "When the answering version was trained, in Unix seconds, from its provenance.",
        )
        if self.trained_at is not None:
            trained.add_metric((), self.trained_at)
        yield trained
        scores = GaugeMetricFamily(
            "movierec_model_offline_score",
            "The answering version's offline scores on the held-out test split, by metric.",
            labels=("metric",),
        )
        for name, score in sorted(self.offline.items()):
            scores.add_metric((name,), score)
        yield scores


def _unix_seconds(stamp: object) -> float | None:
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        return None


def _histogram(name: str, documentation: str, histogram: LatencyHistogram) -> Metric:
    buckets = [
        (label, count)
        for label, (_, count) in zip(_BUCKET_LABELS, histogram.cumulative(), strict=True)
    ]
    return HistogramMetricFamily(name, documentation, buckets=buckets, sum_value=histogram.sum)
