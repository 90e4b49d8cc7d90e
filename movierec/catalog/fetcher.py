"""The catalogue client's workers: each takes the next id from the scheduler, asks the API
once (paced by the shared token bucket, within its deadline) and acts on the answer: the
id is settled, asked again for fields still missing, or planned for a retry after a
backoff. The scheduler re-queues an id for its retry, so no worker ever waits on one id.

Retries: a timeout, connection error, 5xx, 429 or unusable answer costs an attempt and
comes back after an exponential, jittered backoff (Retry-After wins if longer, both at
most `backoff_max`); after `max_attempts` the id is `failed` and the backoff continues from
there. An answer with fields missing is merged with up to `max_answers` answers in all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import orjson

from movierec.catalog.cache import FAILED, NOT_FOUND, OK, CacheEntry, CacheWriter
from movierec.catalog.http import Backoff, Connection, Deadlines, Outcome, Pacer, judge
from movierec.catalog.records import MovieRecord, Parsed, UserRecord, Verdict
from movierec.catalog.scheduler import Job, Scheduler

__all__ = ["Fetcher"]

log = logging.getLogger(__name__)


class Fetcher:
    """The worker threads, one per connection; all bookkeeping under `sched.cond`."""

    def __init__(
        self,
        connections: list[Connection],
        deadlines: Deadlines,
        sched: Scheduler,
        writes: CacheWriter,
        stats: Counter[str],
        found: Callable[[UserRecord | MovieRecord], None],
        *,
        timeout: float,
        max_attempts: int,
        max_answers: int,
        backoff_base: float,
        backoff_max: float,
        rate_limit: float | None,
        burst: float | None,
    ) -> None:
        self.max_attempts = max_attempts
        # Found answers per id while fields are missing: dropped fields are the API's noise,
        # so asking again usually fills them; a field missing every time stays None.
        self.max_answers = max_answers
        self.errors: Counter[str] = Counter()
        self.problems: Counter[str] = Counter()
        self.stop = threading.Event()
        self.pacer = Pacer(rate_limit, burst, backoff_base, backoff_max, self.stop)
        self._connections = connections
        self._deadlines = deadlines
        self._sched = sched
        self._cond = sched.cond
        self._writes = writes
        self._stats = stats
        self._found = found
        self._timeout = timeout
        self._backoff = Backoff(backoff_base, backoff_max, jitter=True)
        self._threads = [
            threading.Thread(target=self._work, args=(conn,), name=f"catalog-{n}", daemon=True)
            for n, conn in enumerate(connections)
        ]
        for thread in self._threads:
            thread.start()

    def close(self) -> None:
        """Stop the workers, interrupting requests in progress (the scheduler is closing)."""
        self.stop.set()
        for conn in self._connections:
            conn.abort()
        deadline = time.monotonic() + self._timeout + 1.0
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._deadlines.close()

    def _work(self, conn: Connection) -> None:
        try:
            while (job := self._sched.take()) is not None:
                try:
                    outcome = self._fetch(conn, job)
                except Exception:  # a bug must cost one attempt, not the worker
                    log.exception("catalogue: fetching %s %s failed", job.kind, job.key)
                    outcome = Outcome.retry("internal")
                with self._cond:
                    self._settle(job, outcome)
                    self._cond.notify_all()
        finally:
            conn.close()

    def _fetch(self, conn: Connection, job: Job) -> Outcome:
        waited = self.pacer.acquire()
        if waited is None:
            return Outcome.stopped()
        path = f"/movie/{quote(str(job.key), safe='+*')}" if job.kind == "movie" else None
        reply = conn.get(path or f"/user/{job.key}")
        with self._cond:
            self._stats["requests"] += 1
            if waited > 0:
                self._stats["rate_limited_waits"] += 1
                self._stats["rate_wait_ms"] += round(waited * 1000)
        if reply.status == 0 and self.stop.is_set():
            return Outcome.stopped()
        if reply.error == "stale":
            with self._cond:
                self._stats["reconnects"] += 1
        return judge(reply, job.kind, job.key, self.pacer)

    def _settle(self, job: Job, outcome: Outcome) -> None:
        """Act on one fetch result (under the lock)."""
        sched = self._sched
        sched.in_flight -= 1
        if outcome.verdict is None:  # stopped, or a free retry after a stale connection
            if not self.stop.is_set():
                sched.push_ready(job, front=True)
            return
        job.total += 1
        if outcome.verdict is Verdict.FOUND and outcome.data is not None:
            parsed = job.absorb(outcome.data)
            if parsed.problems:
                self._stats["incomplete_answers"] += 1
            if parsed.complete or job.answers >= self.max_answers:
                self._finish_found(job, parsed)
            else:
                self._stats["refetches"] += 1
                sched.push_ready(job)
            return
        if outcome.verdict is Verdict.NOT_FOUND:
            if job.partial is not None:  # it was found before: keep what it said
                self._finish_found(job, job.parsed())
            else:
                sched.settle(job, NOT_FOUND)
                self._persist(job, NOT_FOUND, answer=outcome.data)
            return
        self._retry(job, outcome)

    def _retry(self, job: Job, outcome: Outcome) -> None:
        self.errors[outcome.error] += 1
        job.attempts += 1
        job.last_error = outcome.error
        if job.attempts < self.max_attempts:
            self._stats["retries"] += 1
            delay = max(self._backoff.delay(job.attempts), outcome.retry_after or 0.0)
            self._sched.push_delayed(job, min(delay, self._backoff.cap))
            return
        if job.partial is not None:  # the id exists; its fields are as complete as they got
            self._finish_found(job, job.parsed())
            return
        # The round failed: the same exponential backoff continues, but the id is released
        # (wait_idle stops waiting for it) and a sweep retries it when due.
        job.rounds += 1
        job.attempts = 0
        delay = self._backoff.delay(self.max_attempts + job.rounds)
        self._stats["rounds_failed"] += 1
        self._sched.push_waiting(job, delay)
        self._persist(job, FAILED, next_retry=time.time() + delay)

    def _finish_found(self, job: Job, parsed: Parsed) -> None:
        record, problems = parsed.record, parsed.problems
        self.problems.update(problems.values())
        self._sched.settle(job, OK)
        if record is not None:
            self._found(record)
        self._persist(job, OK, record=record, problems=problems)

    def _persist(
        self, job: Job, status: str, answer: dict[str, Any] | None = None, **fields: Any
    ) -> None:
        answer = job.partial if answer is None else answer
        raw = orjson.dumps(answer) if answer is not None else None
        fetched = time.time() if status in (OK, NOT_FOUND) else None
        entry = CacheEntry(job.kind, job.key, status, raw=raw, fetched_at=fetched, **fields)
        entry.attempts, entry.rounds, entry.last_error = job.total, job.rounds, job.last_error
        self._writes.put(entry)
