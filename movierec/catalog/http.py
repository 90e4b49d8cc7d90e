"""HTTP for the catalogue client: a shared pacer (token bucket and pauses), one keep-alive
connection per worker thread that never blocks longer than its timeout, and `judge`,
which tells what a reply means for the id asked: found, not found, or ask again."""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson

from movierec.catalog.records import Verdict, parse_movie, parse_user

__all__ = ["Connection", "Outcome", "Pacer", "Reply", "judge", "parse_retry_after"]

# Answers are a few kB; anything far larger is not an answer of this API.
MAX_BODY = 1 << 20
# Failures in a row (any worker, any id) before the pacer pauses everyone: single errors
# are the API's normal noise, a run of them means it is down or drowning.
FAILURE_RUN = 5


@dataclass(frozen=True, slots=True)
class Reply:
    status: int  # HTTP status; 0 when there was no answer
    body: bytes = b""
    error: str = ""  # timeout | connection | stale | too_large, when status is 0
    retry_after: float | None = None


@dataclass(frozen=True, slots=True)
class Outcome:
    """One fetch: a verdict with its data, a retryable error, or nothing (verdict None)."""

    verdict: Verdict | None
    data: dict[str, Any] | None = None
    error: str = ""
    retry_after: float | None = None

    @classmethod
    def stopped(cls) -> Outcome:
        return cls(None)

    @classmethod
    def again(cls) -> Outcome:
        return cls(None)

    @classmethod
    def retry(cls, error: str, retry_after: float | None = None) -> Outcome:
        return cls(Verdict.INVALID, error=error, retry_after=retry_after)


def judge(reply: Reply, kind: str, key: Any, pacer: Pacer) -> Outcome:
    """What one reply means for the id asked, telling the pacer how the API fares."""
    if reply.status == 0:
        if reply.error == "stale":
            return Outcome.again()
        pacer.failed()
        return Outcome.retry(reply.error)
    if reply.status == 429:
        pacer.throttled(reply.retry_after)
        return Outcome.retry("rate_limited", reply.retry_after)
    if reply.status >= 500:
        pacer.failed()
        return Outcome.retry("server_error", reply.retry_after)
    pacer.succeeded()
    if reply.status not in (200, 404):
        return Outcome.retry("http_status")
    try:
        data = orjson.loads(reply.body)
    except orjson.JSONDecodeError:
        return Outcome.retry("bad_json")
    parsed = parse_movie(key, data) if kind == "movie" else parse_user(key, data)
    # The API answers unknown ids with 200 and a message; a 404 with anything else comes
    # from a proxy or a wrong base URL and says nothing about the id.
    if parsed.verdict is Verdict.INVALID or (
        reply.status == 404 and parsed.verdict is not Verdict.NOT_FOUND
    ):
        return Outcome.retry(parsed.reason or "http_status")
    return Outcome(parsed.verdict, data=data if isinstance(data, dict) else None)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    text = value.strip()
    if text.isascii() and text.isdigit():
        return float(min(int(text[:12]), 86_400))
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


class Pacer:
    """One token bucket for all workers, plus global pauses.

    The limit is the most we ever send. After a 429 the rate in force is halved and then
    creeps back up with each success, so a client set higher than the API's own limit
    settles near that limit instead of spending half its requests on 429s.
    """

    def __init__(
        self,
        rate: float | None,
        burst: float | None,
        backoff_base: float,
        backoff_max: float,
        stop: threading.Event,
    ) -> None:
        self.limit = float(rate or 0.0)
        self.rate = self.limit
        self.burst = float(burst) if burst else max(1.0, self.limit / 10)
        self._tokens = self.burst
        self._last = time.monotonic()
        self._paused_until = 0.0
        self._failures = 0
        self._throttles = 0
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max
        self._stop = stop
        self._lock = threading.Lock()

    def acquire(self) -> float | None:
        """Wait for a send slot; the seconds waited, or None when stopped meanwhile."""
        slot: float | None = None
        waited = 0.0
        while True:
            with self._lock:
                now = time.monotonic()
                if slot is None:
                    slot = now
                    if self.rate > 0:
                        self._tokens = min(
                            self.burst, self._tokens + (now - self._last) * self.rate
                        )
                        self._last = now
                        self._tokens -= 1.0
                        # Reserving ahead (tokens below zero) keeps waiting workers in order.
                        if self._tokens < 0:
                            slot = now - self._tokens / self.rate
                wait = max(slot, self._paused_until) - now
            if wait <= 0:
                return waited
            if self._stop.wait(wait):
                return None
            waited += wait

    def _backoff(self, n: int) -> float:
        return min(self._backoff_max, self._backoff_base * 2.0 ** min(n, 40))

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def throttled(self, retry_after: float | None) -> None:
        """The API answered 429: slow down, and pause everyone (as told, if it said)."""
        with self._lock:
            self._throttles += 1
            if self.limit > 0:
                self.rate = max(self.limit / 64, self.rate / 2)
            delay = retry_after if retry_after is not None else self._backoff(self._throttles - 1)
        self.pause(min(delay, self._backoff_max))

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            run = self._failures - FAILURE_RUN
        if run >= 0:
            self.pause(self._backoff(run))

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0
            self._throttles = 0
            if self.rate < self.limit:
                self.rate = min(self.limit, self.rate + self.limit / 50)


class Connection:
    """One keep-alive HTTP connection to the API, reopened whenever it breaks."""

    def __init__(self, base_url: str, timeout: float) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"catalogue API URL must be http(s)://host[:port], got {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._conn: http.client.HTTPConnection | None = None
        self._used = False  # the open connection has carried a whole exchange
        self._aborted = False
        self._lock = threading.Lock()

    def _open(self) -> http.client.HTTPConnection:
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self._timeout)
        with self._lock:
            if self._aborted:
                raise ConnectionAbortedError("catalogue client is closing")
            self._conn, self._used = conn, False
        return conn

    def get(self, path: str) -> Reply:
        reused = self._conn is not None and self._used
        try:
            conn = self._conn or self._open()
            conn.request("GET", self._prefix + path, headers={"Accept": "application/json"})
            response = conn.getresponse()
            body = response.read(MAX_BODY + 1)
        except TimeoutError:
            self.close()
            return Reply(0, error="timeout")
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            # The API drops keep-alive connections it finds idle; that says nothing of it.
            stale = reused and isinstance(
                exc, ConnectionResetError | BrokenPipeError | http.client.RemoteDisconnected
            )
            return Reply(0, error="stale" if stale else "connection")
        if len(body) > MAX_BODY:
            self.close()
            return Reply(0, error="too_large")
        if response.will_close:
            self.close()
        else:
            self._used = True
        retry_after = parse_retry_after(response.getheader("Retry-After"))
        return Reply(response.status, body, retry_after=retry_after)

    def abort(self) -> None:
        """From another thread: make a request in progress fail now instead of hanging."""
        with self._lock:
            self._aborted = True
            conn = self._conn
        sock = getattr(conn, "sock", None)
        if isinstance(sock, socket.socket):
            # OSError: closed already, so nothing is left to interrupt.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._lock:
            conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
