"""The ingestion's own numbers in the Prometheus text format, on 127.0.0.1:PORT/metrics.

After each commit the batch loop publishes a copy of its counters with the commit's time
(`Ingestor.committed`, one assignment); a collector reads that when Prometheus scrapes, so
ingesting takes no lock and makes no library call, and a scrape sees whole committed
batches only. The numbers are cumulative over runs: the counters are restored from the
checkpoint, so a restart is not a counter reset.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from movierec.logformat.reference import KIND_NAMES, REASONS

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from movierec.ingest.group import GroupIngestor
    from movierec.ingest.runner import Ingestor

HOST = "127.0.0.1"


class IngestCollector(Collector):
    """Reads what an Ingestor published at its last commit, when Prometheus scrapes."""

    def __init__(self, ingestor: Ingestor | GroupIngestor) -> None:
        self.ingestor = ingestor

    def collect(self) -> Iterator[Metric]:
        ingestor = self.ingestor
        counters, at = ingestor.committed  # never changed after publication
        stored = counters.get("stored", {})
        rejected = counters.get("rejected", {})
        yield CounterMetricFamily(
            "movierec_ingest_lines_total",
            "Lines read from the stream (every line: stored, rejected or duplicate).",
            value=counters.get("lines_read", 0),
        )
        by_kind = CounterMetricFamily(
            "movierec_ingest_stored_total", "Events stored, by kind.", labels=("kind",)
        )
        for kind in KIND_NAMES[:3]:
            by_kind.add_metric((kind,), stored.get(kind, 0))
        yield by_kind
        by_reason = CounterMetricFamily(
            "movierec_ingest_rejected_total",
            "Lines rejected and kept aside in the quarantine, by reason.",
            labels=("reason",),
        )
        # Every reason, zeros included: a series that exists from the start gives rate() a
        # first sample, so the first rejects of a kind are counted, not swallowed.
        for reason in sorted({*REASONS, *rejected}):
            by_reason.add_metric((reason,), rejected.get(reason, 0))
        yield by_reason
        yield CounterMetricFamily(
            "movierec_ingest_duplicates_total",
            "Exact duplicate lines dropped.",
            value=counters.get("duplicates", 0),
        )
        yield CounterMetricFamily(
            "movierec_ingest_batches_total",
            "Batches committed.",
            value=counters.get("batches", 0),
        )
        yield from self._times(at)
        yield from self._catalogue()

    def _catalogue(self) -> Iterator[Metric]:
        """The site API's answers to the catalogue lookups: live, not as of the last commit
        (they happen between commits, and an outage must show while batches go on)."""
        stats = self.ingestor.catalog.stats()
        yield CounterMetricFamily(
            "movierec_ingest_catalogue_requests_total",
            "Requests made to the site's user/movie API (every attempt, retries included).",
            value=stats.get("requests", 0),
        )
        # One series, zero from the start: rate() then counts an outage's first failures
        # (a series per kind would be born with them, and its first sample has no rate).
        yield CounterMetricFamily(
            "movierec_ingest_catalogue_errors_total",
            "Requests to the site's API that failed (timeout, refused, 5xx, unreadable); "
            "the ingestion report has them by kind.",
            value=sum(stats.get("errors", {}).values()),
        )
        # An outage in one number, however few requests the pacer's pauses let through:
        # the drill showed the error share stays low (docs/responsible.md).
        yield GaugeMetricFamily(
            "movierec_ingest_catalogue_failure_streak",
            "Requests to the site's API failed in a row (no answer, or 5xx) since it last "
            "answered.",
            value=stats.get("failure_streak", 0),
        )

    def _times(self, at: float | None) -> Iterator[Metric]:
        committed = GaugeMetricFamily(
            "movierec_ingest_last_commit_timestamp_seconds",
            "When this run last committed a batch, in Unix seconds (absent before the first).",
        )
        if at is not None:
            committed.add_metric((), at)
        yield committed
        lag = GaugeMetricFamily(
            "movierec_ingest_lag_seconds",
            "Now minus the arrival time of the newest committed line (grows while the stream "
            "is idle, and while ingestion falls behind).",
        )
        watermark = self.ingestor.checkpoint.watermark_ns
        if watermark:
            lag.add_metric((), max(0.0, time.time() - watermark / 1e9))
        yield lag


def serve_metrics(ingestor: Ingestor | GroupIngestor, port: int) -> WSGIServer:
    """Serve the ingestor's metrics on HOST:port (0: any free port) from a thread of their
    own; `server.server_address` holds the address taken, `server.shutdown()` stops it."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(IngestCollector(ingestor))
    server, _ = start_http_server(port, addr=HOST, registry=registry)
    return server
