"""Answers that continue a walk through user ids, live: `movierec_sequential_answers_total`
counts the answers whose user id is one more than one of the last WINDOW ids answered.

A scraper walking ids in order makes nearly every one of its answers one, even with a few
dozen requests in flight (they overtake each other by less than the window) and with the
site's requests in between, as long as fewer than WINDOW of those come between two of its
own (a walk at a seventh of the site's rate or more, with the default window). The site
asks for its users at random, so its own answers are one by chance: about WINDOW / users
of them (1.6 % of a 2,000-user site, next to nothing for a million). Its share of
movierec_answers_total is what an alert compares; movierec/audit/scraping.py judges the
same pattern in the answer log afterwards, over whole minutes.

The hot path pays one scan of a 32-entry deque and one append per answer (~0.3 us), on
the event loop thread that also renders /metrics, so no lock is taken.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

WINDOW = 32


class SequentialAnswers(Collector):
    def __init__(self, window: int = WINDOW) -> None:
        if window < 1:
            raise ValueError(f"the window must hold at least one id, not {window}")
        self.recent: deque[int] = deque(maxlen=window)
        self.count = 0

    def observe(self, user: int) -> None:
        """One answer, for `user`."""
        if user - 1 in self.recent:
            self.count += 1
        self.recent.append(user)

    def collect(self) -> Iterator[Metric]:
        yield CounterMetricFamily(
            "movierec_sequential_answers_total",
            f"Answers whose user id is one more than one of the last {self.recent.maxlen} "
            "answered: a walk through user ids (a scraper) makes nearly all of its answers "
            "one, the site's users at random few.",
            value=self.count,
        )
