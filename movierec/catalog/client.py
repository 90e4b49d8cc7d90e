"""The catalogue: what the site's API says about every user and movie id ingestion sees.

    catalog = CatalogClient("http://api:8080", store / "catalog.sqlite")
    catalog.request_movies(batch_movie_ids)   # never blocks: new ids are queued
    catalog.movie_status("walle+2008")        # ok | not_found | pending | failed | unseen
    catalog.wait_idle(30.0)                   # end of a bounded run: let it fill in
    catalog.close()

Worker threads (`movierec.catalog.fetcher`) fetch in the background, movies before users,
at a bounded rate, each request within its timeout, with retries; the SQLite cache means
an id is fetched once across restarts. Ingestion never waits for the API: whatever could
not be fetched stays pending or failed and is retried.
"""

from __future__ import annotations

import logging
import operator
import os
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from movierec.catalog.cache import (
    FAILED,
    NOT_FOUND,
    OK,
    PENDING,
    CacheEntry,
    CacheWriter,
    CatalogCache,
)
from movierec.catalog.fetcher import Fetcher
from movierec.catalog.http import Connection, Deadlines
from movierec.catalog.records import MovieRecord, UserRecord
from movierec.catalog.scheduler import KINDS, Scheduler
from movierec.ids import MAX_USER_ID, is_movie_id, parse_user_id

__all__ = [
    "FAILED",
    "NOT_FOUND",
    "OK",
    "PENDING",
    "UNSEEN",
    "CatalogClient",
    "MovieRecord",
    "UserRecord",
]

log = logging.getLogger(__name__)

UNSEEN = "unseen"  # never requested


class CatalogClient:
    """Fetches users and movies in the background into a SQLite cache; see module doc.

    `timeout` bounds each request as a whole (connect, send, the whole answer); retries
    and their backoff are the fetcher's (`movierec.catalog.fetcher`).
    """

    def __init__(
        self,
        base_url: str | None,
        cache_path: str | os.PathLike[str],
        *,
        timeout: float = 2.0,
        max_attempts: int = 5,
        backoff_base: float = 0.2,
        backoff_max: float = 60.0,
        rate_limit: float | None = 50.0,
        burst: float | None = None,
        workers: int = 8,
        max_answers: int = 4,
    ) -> None:
        if max_attempts < 1 or max_answers < 1 or workers < 1 or timeout <= 0:
            raise ValueError("max_attempts, max_answers, workers and timeout must be positive")
        self.base_url = base_url
        self.timeout = timeout
        self._stats: Counter[str] = Counter()
        self._closed = False
        # Built first: a bad URL must fail before any thread or file is opened.
        deadlines = Deadlines()
        connections = [
            Connection(base_url, timeout, deadlines) for _ in range(workers) if base_url is not None
        ]
        self._cache = CatalogCache(cache_path)
        self._sched = Scheduler(online=base_url is not None)
        self._cond = self._sched.cond
        self._movies: dict[str, MovieRecord] = {}
        # Users settled but not yet committed, so a read right after settling finds them.
        self._fresh_users: dict[int, UserRecord] = {}
        self._sched.load(self._cache)
        self._writes = CacheWriter(self._cache, self._stored, self._store_failed)
        self._fetcher = Fetcher(
            connections,
            deadlines,
            self._sched,
            self._writes,
            self._stats,
            self._found,
            timeout=timeout,
            max_attempts=max_attempts,
            max_answers=max_answers,
            backoff_base=backoff_base,
            backoff_max=backoff_max,
            rate_limit=rate_limit,
            burst=burst,
        )

    # --- asking ----------------------------------------------------------------------------

    def request_movies(self, ids: Iterable[str]) -> int:
        """Queue the movie ids not known yet; returns how many were new. Never blocks."""
        wanted = ids if isinstance(ids, set | frozenset) else set(ids)
        with self._cond:
            new = wanted - self._sched.index["movie"].seen
            if not new:
                return 0
            good = {str(key) for key in new if isinstance(key, str) and is_movie_id(key)}
            for key in new.difference(good):
                self._stats["malformed_ids"] += 1
                if isinstance(key, str):
                    # SPEC section 3: no movie has such an id, so no request can find one.
                    self._sched.settle(self._sched.add("movie", key, fetch=False), NOT_FOUND)
                    self._writes.put(CacheEntry("movie", key, NOT_FOUND, last_error="malformed"))
            return self._enqueue("movie", good)

    def request_users(self, ids: Iterable[int]) -> int:
        """Queue the user ids not known yet; returns how many were new. Never blocks."""
        wanted = ids if isinstance(ids, set | frozenset) else set(ids)
        with self._cond:
            new = wanted - self._sched.index["user"].seen
            if not new:
                return 0
            clean: set[int] = set()
            for key in new:
                user_id = _user_key(key)
                if user_id is None:
                    self._stats["malformed_ids"] += 1
                else:
                    clean.add(user_id)
            return self._enqueue("user", clean - self._sched.index["user"].seen)

    def _enqueue(self, kind: str, keys: set[Any]) -> int:
        if keys:
            for key in keys:
                self._sched.add(kind, key)
            self._writes.add_pending(kind, list(keys))
            self._cond.notify_all()
        return len(keys)

    # --- queries ---------------------------------------------------------------------------

    def movie_status(self, movie_id: str) -> str:
        with self._cond:
            return self._sched.status("movie", movie_id) or UNSEEN

    def movie_statuses(self, ids: Iterable[str]) -> dict[str, str]:
        with self._cond:
            return {key: self._sched.status("movie", key) or UNSEEN for key in ids}

    def user_status(self, user_id: int) -> str:
        with self._cond:
            return self._sched.status("user", user_id) or UNSEEN

    def unknown_movies(self) -> set[str]:
        """Movie ids the API definitively does not know."""
        with self._cond:
            return set(self._sched.index["movie"].not_found)

    def movie(self, movie_id: str) -> MovieRecord | None:
        with self._cond:
            record = self._movies.get(movie_id)
            if record is not None or self._sched.status("movie", movie_id) != OK:
                return record
        found = self._read("movie", movie_id)
        if isinstance(found, MovieRecord):
            with self._cond:
                self._movies[movie_id] = found
            return found
        return None

    def user(self, user_id: int) -> UserRecord | None:
        with self._cond:
            record = self._fresh_users.get(user_id)
            if record is not None or self._sched.status("user", user_id) != OK:
                return record
        found = self._read("user", user_id)
        return found if isinstance(found, UserRecord) else None

    def details(self, kind: str, key: int | str) -> dict[str, Any] | None:
        """Stored status, field problems, raw answer and retry state of one id."""
        if self._closed:
            return None
        self._writes.flush(5.0)
        return self._cache.details(kind, key)

    def _read(self, kind: str, key: int | str) -> UserRecord | MovieRecord | None:
        if self._closed:
            return None
        try:
            return self._cache.read(kind, key)
        except sqlite3.Error:
            log.exception("catalogue cache: cannot read %s %s", kind, key)
            return None

    def wait_idle(self, timeout: float, *, settled: bool = False) -> bool:
        """Wait until nothing is queued, in flight or due for retry; False on timeout.

        Ids whose round failed and whose retry is not due yet do not count: waiting for
        them could take minutes — unless `settled`, which waits (within timeout) until every
        id is answered for good, failed rounds retried when due. Results may still be on
        their way to the file: `flush`."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while True:
                now = time.monotonic()
                wake = self._sched.idle_in(now)
                if wake is None and settled and self._sched.online and self._sched.unsettled():
                    wake = now + 0.1  # failed ids wait for their retry: look again soon
                if wake is None:
                    return True
                if now >= deadline:
                    return False
                self._cond.wait(max(0.001, min(deadline, wake) - now))

    def wait_movies(self, timeout: float) -> bool:
        """Wait until no movie id asked for is still waiting for its first answer (answered,
        or its round failed); False on timeout. Users are not waited for: a stop needs the
        movies' verdicts, and the users' demographics can come later."""
        deadline = time.monotonic() + max(0.0, timeout)
        with self._cond:
            while self._sched.online and self._sched.counts("movie")[PENDING] > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))  # settling notifies; the bound is a backstop
        return True

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every result so far is committed to the cache file."""
        return not self._closed and self._writes.flush(timeout)

    def stats(self) -> dict[str, Any]:
        with self._cond:
            out: dict[str, Any] = {kind: self._sched.counts(kind) for kind in KINDS}
            out.update(self._sched.queue_sizes())
            out.update(self._stats)
            out["errors"] = dict(self._fetcher.errors)
            out["problems"] = dict(self._fetcher.problems)
            # The rate in force drops below the limit after 429s, then climbs back.
            pacer = self._fetcher.pacer
            out.update(rate=pacer.rate, rate_limit=pacer.limit, burst=pacer.burst)
            out["failure_streak"] = pacer.streak
        return out

    # --- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Stop the workers (interrupting requests in progress) and flush the cache."""
        with self._cond:
            if self._closed:
                return
            self._sched.closing = True
            self._cond.notify_all()
        self._fetcher.close()
        self._writes.close()
        self._closed = True
        self._cache.close()

    def __enter__(self) -> CatalogClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- callbacks (fetcher and writer threads) ------------------------------------------

    def _found(self, record: UserRecord | MovieRecord) -> None:
        """A record just settled (under the lock): readable before it reaches the file."""
        if isinstance(record, MovieRecord):
            self._movies[record.movie_id] = record
        else:
            self._fresh_users[record.user_id] = record

    def _stored(self, entries: list[CacheEntry]) -> None:
        with self._cond:
            for entry in entries:
                if entry.kind == "user":
                    self._fresh_users.pop(int(entry.key), None)

    def _store_failed(self) -> None:
        with self._cond:
            self._stats["cache_errors"] += 1


def _user_key(key: object) -> int | None:
    if isinstance(key, str):
        return parse_user_id(key)
    try:
        user_id = operator.index(key)  # type: ignore[call-overload]
    except TypeError:
        return None
    return user_id if 0 < user_id <= MAX_USER_ID and not isinstance(key, bool) else None
