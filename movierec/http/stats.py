"""What the server did, as plain numbers a metrics collector reads at scrape time.

Only the event loop's thread writes them, so the hot path takes no lock: an answer costs
one dict increment, and a batch of pipelined answers one histogram bucket update. Every
answer is counted by status, the server's own refusals (parse errors, limits, timeouts,
the connection cap) included, and latency runs from the first byte of a request read to
the last byte of its answer handed to the socket.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter

# Seconds: from well under a millisecond to the site's 600 ms limit, and beyond it.
LATENCY_BUCKETS = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.6, 1.0, 2.5,
)  # fmt: skip

COUNTER_NAMES = (
    "connections",  # accepted and admitted
    "connections_rejected",  # refused with a 503 at the connection cap
    "connections_evicted",  # idle (or over-share) connections closed to admit a newcomer
    "connections_shed",  # dropped because buffered memory went over max_buffered
    "requests",  # complete requests parsed (the handler saw each one)
    "bad_requests",  # refused by the server itself (parse errors, limits)
    "handler_errors",  # handler raised or returned something other than a Response
    "timeouts",  # header, body or write deadlines that fired
    "turns_deferred",  # pipelined input left for a later loop turn, for fairness
    "backpressure_pauses",  # a connection stopped being read: its answers went unread
)


class LatencyHistogram:
    """Per-bucket counts (not cumulative: one increment per observation) and their sum."""

    __slots__ = ("counts", "sum")

    def __init__(self) -> None:
        self.counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.sum = 0.0

    def observe(self, seconds: float, n: int = 1) -> None:
        """Count `n` requests that each took `seconds`; bisect_left puts a value equal to
        a bound in that bound's bucket (Prometheus buckets are `le`, less than or equal)."""
        self.counts[bisect_left(LATENCY_BUCKETS, seconds)] += n
        self.sum += seconds * n

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[tuple[float, int]]:
        """(upper bound, observations at or below it) per bucket, +Inf last."""
        total, out = 0, []
        for bound, n in zip((*LATENCY_BUCKETS, float("inf")), self.counts, strict=True):
            total += n
            out.append((bound, total))
        return out


class ServerStats:
    """The counters of one HTTPServer; a service creates it and hands it to its server."""

    def __init__(self) -> None:
        self.counters: dict[str, int] = dict.fromkeys(COUNTER_NAMES, 0)
        # Status code -> answers given with it, whoever decided it (handler or server).
        self.statuses: Counter[int] = Counter()
        self.latency = LatencyHistogram()
        # Gauges the server keeps current: open connections, bytes held (see max_buffered).
        self.open_connections = 0
        self.buffered_bytes = 0
