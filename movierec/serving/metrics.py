"""The service's own numbers in the Prometheus text format (`GET /metrics`).

The hot path only bumps plain Python counters: request counters are touched by the event
loop thread alone, and the loader, freshness and telemetry threads each own theirs, so no
lock is taken per request. `prometheus_client` turns them into exposition text at scrape
time, through a collector that reads them, beside the library's process and platform
collectors; it also escapes label values, so any model version scrapes cleanly.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Iterator

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

# Seconds: from well under a millisecond to the site's 600 ms limit.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.6)
_BUCKET_LABELS = [*(floatToGoString(bound) for bound in BUCKETS), "+Inf"]
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4  # what generate_latest writes


class Metrics(Collector):
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()  # (route, status)
        self.answers: Counter[str] = Counter()  # model | fresh | segment | popular
        # Per bucket, not cumulative: one increment per observation; summed at scrape time.
        self._bucket_counts = [0] * (len(BUCKETS) + 1)
        self._latency_sum = 0.0
        self.swaps = 0
        self.swap_failures = 0
        self.model_version = ""
        self.model_loaded_at = 0.0
        self.fresh_updates = 0
        self.fresh_events = 0
        self.telemetry_written = 0
        self.telemetry_dropped = 0
        self.started = time.time()
        # One registry per service, so two services in a process (tests) never share numbers.
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def observe(self, seconds: float) -> None:
        """Count one /recommend answer time; bisect_left puts a value equal to a bound in
        that bound's bucket (Prometheus buckets are `le`, less than or equal)."""
        self._bucket_counts[bisect_left(BUCKETS, seconds)] += 1
        self._latency_sum += seconds

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
        yield self._latency()
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
        yield from self._background()

    def _latency(self) -> HistogramMetricFamily:
        cumulative, buckets = 0, []
        for label, count in zip(_BUCKET_LABELS, self._bucket_counts, strict=True):
            cumulative += count
            buckets.append((label, cumulative))
        return HistogramMetricFamily(
            "movierec_request_seconds",
            "Time to answer /recommend, in the server.",
            buckets=buckets,
            sum_value=self._latency_sum,
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

    def _background(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "movierec_fresh_events_total",
            "Watch and rate events freshness took in from the stream (future-dated ones left out).",
            value=self.fresh_events,
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
            "movierec_uptime_seconds",
            "Seconds since the service started.",
            value=time.time() - self.started,
        )
