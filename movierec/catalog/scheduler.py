"""Bookkeeping of the catalogue client: which ids are known, which wait, which are fetched.

Every id is in exactly one place: settled (ok / not_found), ready to fetch, in flight,
delayed for a retry within its round, or waiting after a failed round. All methods run
under `Scheduler.cond`; the client holds it around every call.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from movierec.catalog.cache import FAILED, NOT_FOUND, OK, PENDING
from movierec.catalog.records import Parsed, merge_answers, parse_movie, parse_user

if TYPE_CHECKING:
    from movierec.catalog.cache import CatalogCache

__all__ = ["KINDS", "Job", "Scheduler"]

# Fetch order: ingestion validates movie ids with the catalogue, users only enrich.
KINDS = ("movie", "user")


@dataclass(slots=True, eq=False)
class Job:
    kind: str
    key: Any
    status: str = PENDING  # as stored: pending, or failed after a failed round
    attempts: int = 0  # failures in the current round
    total: int = 0  # requests answered or failed, over all rounds and restarts
    rounds: int = 0  # failed rounds
    answers: int = 0  # found answers merged so far
    partial: dict[str, Any] | None = None  # the found answers merged
    last_error: str | None = None
    where: str = ""  # ready | flight | delayed | waiting; "" when nothing is planned

    def absorb(self, answer: dict[str, Any]) -> Parsed:
        """Merge a found answer into those before; the merged answer, judged."""
        self.answers += 1
        if self.partial is not None:
            answer = merge_answers(self.kind, self.partial, answer)
        self.partial = answer
        return self.parsed()

    def parsed(self) -> Parsed:
        parse = parse_movie if self.kind == "movie" else parse_user
        return parse(self.key, self.partial or {})


@dataclass(slots=True)
class _Index:
    seen: set[Any] = field(default_factory=set)  # every id ever requested or stored
    not_found: set[Any] = field(default_factory=set)
    open: dict[Any, Job] = field(default_factory=dict)  # pending or failed
    failed: int = 0


class Scheduler:
    def __init__(self, online: bool) -> None:
        self.cond = threading.Condition()
        self.online = online
        self.closing = False
        self.index = {kind: _Index() for kind in KINDS}
        self.ready: dict[str, deque[Job]] = {kind: deque() for kind in KINDS}
        self.heap: list[tuple[float, int, Job]] = []
        self._seq = itertools.count()
        self.in_flight = 0
        self.retrying = 0  # delayed within a round: still owed an answer

    def load(self, cache: CatalogCache) -> None:
        """Take over the stored state; what was pending or failed is fetched again."""
        for kind in KINDS:
            index = self.index[kind]
            for key, status, attempts, rounds, _next_retry in cache.states(kind):
                index.seen.add(key)
                if status == NOT_FOUND:
                    index.not_found.add(key)
                elif status != OK:
                    # A failed id is retried at once: its backoff spared the API from this
                    # process, a new process has no evidence the API still fails.
                    job = Job(kind, key, FAILED if status == FAILED else PENDING)
                    job.total, job.rounds = attempts, rounds
                    index.failed += job.status == FAILED
                    index.open[key] = job
                    if self.online:
                        self.push_ready(job)

    def add(self, kind: str, key: Any, fetch: bool = True) -> Job:
        job = Job(kind, key)
        index = self.index[kind]
        index.seen.add(key)
        index.open[key] = job
        if fetch and self.online:
            self.push_ready(job)
        return job

    def status(self, kind: str, key: Any) -> str | None:
        index = self.index[kind]
        job = index.open.get(key)
        if job is not None:
            return job.status
        if key in index.not_found:
            return NOT_FOUND
        return OK if key in index.seen else None

    def settle(self, job: Job, status: str) -> None:
        index = self.index[job.kind]
        index.open.pop(job.key, None)
        if status == NOT_FOUND:
            index.not_found.add(job.key)
        if job.status == FAILED:
            index.failed -= 1
        job.status, job.where = status, ""

    def push_ready(self, job: Job, front: bool = False) -> None:
        job.where = "ready"
        if front:
            self.ready[job.kind].appendleft(job)
        else:
            self.ready[job.kind].append(job)

    def push_delayed(self, job: Job, delay: float) -> None:
        job.where = "delayed"
        self.retrying += 1
        heapq.heappush(self.heap, (time.monotonic() + delay, next(self._seq), job))

    def push_waiting(self, job: Job, delay: float) -> None:
        if job.status != FAILED:
            self.index[job.kind].failed += 1
            job.status = FAILED
        job.where = "waiting"
        heapq.heappush(self.heap, (time.monotonic() + delay, next(self._seq), job))

    def _promote(self, now: float) -> None:
        while self.heap and self.heap[0][0] <= now:
            _, _, job = heapq.heappop(self.heap)
            if job.where == "delayed":
                self.retrying -= 1
            self.push_ready(job)

    def take(self) -> Job | None:
        """The next id to fetch, movies first; blocks; None once closing."""
        with self.cond:
            while not self.closing:
                now = time.monotonic()
                self._promote(now)
                for kind in KINDS:
                    if self.ready[kind]:
                        job = self.ready[kind].popleft()
                        job.where = "flight"
                        self.in_flight += 1
                        return job
                self.cond.wait(self.heap[0][0] - now if self.heap else None)
            return None

    def idle_in(self, now: float) -> float | None:
        """None when idle (nothing queued, in flight, retrying or due); else when to look
        again (monotonic time; inf: when notified)."""
        if not self.online:
            return None  # nothing can be fetched, so there is nothing to wait for
        busy = self.in_flight or self.retrying or any(self.ready.values())
        if busy or (self.heap and self.heap[0][0] <= now):
            return float("inf")
        return None

    def unsettled(self) -> bool:
        """Whether any id still waits for an answer (pending, or failed and retried later)."""
        return any(index.open for index in self.index.values())

    def counts(self, kind: str) -> dict[str, int]:
        index = self.index[kind]
        return {
            OK: len(index.seen) - len(index.not_found) - len(index.open),
            NOT_FOUND: len(index.not_found),
            PENDING: len(index.open) - index.failed,
            FAILED: index.failed,
        }

    def queue_sizes(self) -> dict[str, int]:
        return {
            "queued": sum(len(q) for q in self.ready.values()),
            "in_flight": self.in_flight,
            "retrying": self.retrying,
            "waiting": len(self.heap) - self.retrying,
        }
