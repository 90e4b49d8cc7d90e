"""The service's own numbers in the Prometheus text format (`GET /metrics`).

Request counters are only touched by the event loop thread; the loader and freshness
threads own theirs, so no lock is needed on the hot path."""

from __future__ import annotations

import time
from collections import Counter

# Seconds: from well under a millisecond to the site's 600 ms limit.
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.6)


class Metrics:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, int]] = Counter()  # (route, status)
        self.answers: Counter[str] = Counter()  # model | fresh | segment | popular
        self._bucket_counts = [0] * (len(BUCKETS) + 1)
        self._latency_sum = 0.0
        self._latency_count = 0
        self.swaps = 0
        self.swap_failures = 0
        self.model_version = ""
        self.model_loaded_at = 0.0
        self.fresh_updates = 0
        self.fresh_events = 0
        self.telemetry_written = 0
        self.telemetry_dropped = 0
        self.started = time.time()

    def observe(self, seconds: float) -> None:
        index = 0
        while index < len(BUCKETS) and seconds > BUCKETS[index]:
            index += 1
        self._bucket_counts[index] += 1
        self._latency_sum += seconds
        self._latency_count += 1

    def render(self) -> bytes:
        lines = [
            "# HELP movierec_requests_total HTTP requests answered, by route and status.",
            "# TYPE movierec_requests_total counter",
        ]
        for (route, status), count in sorted(self.requests.items()):
            lines.append(f'movierec_requests_total{{route="{route}",status="{status}"}} {count}')
        lines += [
            "# HELP movierec_request_seconds Time to answer /recommend, in the server.",
            "# TYPE movierec_request_seconds histogram",
        ]
        cumulative = 0
        for bound, count in zip([*BUCKETS, float("inf")], self._bucket_counts, strict=True):
            cumulative += count
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'movierec_request_seconds_bucket{{le="{le}"}} {cumulative}')
        lines += [
            f"movierec_request_seconds_sum {self._latency_sum:.6f}",
            f"movierec_request_seconds_count {self._latency_count}",
            "# HELP movierec_answers_total Lists answered, by where they came from "
            "(model, fresh: refreshed from recent events, segment and popular: fallbacks).",
            "# TYPE movierec_answers_total counter",
        ]
        lines += [
            f'movierec_answers_total{{source="{k}"}} {v}' for k, v in sorted(self.answers.items())
        ]
        lines += [
            "# HELP movierec_fallbacks_total Answers for users the model does not know.",
            "# TYPE movierec_fallbacks_total counter",
            f"movierec_fallbacks_total {self.answers['segment'] + self.answers['popular']}",
            "# HELP movierec_model_info The model version answering.",
            "# TYPE movierec_model_info gauge",
            f'movierec_model_info{{version="{self.model_version}"}} 1',
            "# TYPE movierec_model_loaded_timestamp_seconds gauge",
            f"movierec_model_loaded_timestamp_seconds {self.model_loaded_at:.3f}",
            "# HELP movierec_model_swaps_total Model versions switched to without downtime.",
            "# TYPE movierec_model_swaps_total counter",
            f"movierec_model_swaps_total {self.swaps}",
            "# HELP movierec_model_swap_failures_total Versions refused (corrupt, incompatible).",
            "# TYPE movierec_model_swap_failures_total counter",
            f"movierec_model_swap_failures_total {self.swap_failures}",
            "# TYPE movierec_fresh_events_total counter",
            f"movierec_fresh_events_total {self.fresh_events}",
            "# HELP movierec_fresh_updates_total Lists refreshed from events newer than the model.",
            "# TYPE movierec_fresh_updates_total counter",
            f"movierec_fresh_updates_total {self.fresh_updates}",
            "# TYPE movierec_telemetry_written_total counter",
            f"movierec_telemetry_written_total {self.telemetry_written}",
            "# TYPE movierec_telemetry_dropped_total counter",
            f"movierec_telemetry_dropped_total {self.telemetry_dropped}",
            "# TYPE movierec_uptime_seconds gauge",
            f"movierec_uptime_seconds {time.time() - self.started:.1f}",
        ]
        return ("\n".join(lines) + "\n").encode()
