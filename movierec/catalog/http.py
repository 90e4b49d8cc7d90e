"""HTTP for the catalogue client: a shared pacer (token bucket and pauses), backoff delays,
one keep-alive connection per worker thread whose every request (connect, send, the whole
answer) ends by its deadline, and `judge`, which tells what a reply means for the id
asked: found, not found, or ask again."""

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
from tenacity import RetryCallState, Retrying, wait_exponential, wait_random_exponential

from movierec.catalog.records import Verdict, parse_movie, parse_user

__all__ = [
    "Backoff",
    "Connection",
    "Deadlines",
    "Outcome",
    "Pacer",
    "Reply",
    "judge",
    "parse_retry_after",
]

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


class Backoff:
    """Exponential backoff delays, from tenacity's wait strategies, for the n-th failure in
    a row. Nothing here sleeps: the scheduler re-queues an id for later and the pacer
    pauses senders, so a worker never blocks on one id; only the delays are tenacity's."""

    # tenacity's strategies read the attempt number from a call state, which wants an owner.
    _OWNER = Retrying()

    def __init__(self, base: float, cap: float, *, jitter: bool) -> None:
        self.cap = cap
        if jitter:
            # Equal jitter: half the delay, plus up to as much again at random, so ids that
            # failed together come back spread out, yet never much sooner than planned.
            half = wait_exponential(multiplier=base / 2, max=cap / 2)
            self._wait = half + wait_random_exponential(multiplier=base / 2, max=cap / 2)
        else:
            self._wait = wait_exponential(multiplier=base, max=cap)

    def delay(self, failures: int) -> float:
        """Seconds to wait after `failures` failures in a row: base * 2**(failures - 1),
        at most `cap` (with jitter: between half of that and all of it)."""
        state = RetryCallState(self._OWNER, None, (), {})
        state.attempt_number = max(1, failures)
        return float(self._wait(state))


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
        self._backoff = Backoff(backoff_base, backoff_max, jitter=False)
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

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)

    def throttled(self, retry_after: float | None) -> None:
        """The API answered 429: slow down, and pause everyone (as told, if it said)."""
        with self._lock:
            self._throttles += 1
            if self.limit > 0:
                self.rate = max(self.limit / 64, self.rate / 2)
            throttles = self._throttles
        delay = retry_after if retry_after is not None else self._backoff.delay(throttles)
        self.pause(min(delay, self._backoff.cap))

    @property
    def streak(self) -> int:
        """Requests failed in a row (no answer, or 5xx) since the API last answered."""
        return self._failures

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            run = self._failures - FAILURE_RUN
        if run >= 0:
            self.pause(self._backoff.delay(run + 1))

    def succeeded(self) -> None:
        with self._lock:
            self._failures = 0
            self._throttles = 0
            if self.rate < self.limit:
                self.rate = min(self.limit, self.rate + self.limit / 50)


class Deadlines:
    """One thread that cuts requests still running at their deadline.

    A socket timeout bounds each read, not the answer: a server sending one byte at a time
    would hold a worker for ever. Each request arms its deadline here; when it passes, the
    connection's socket is shut down, which ends a blocked read or send at once."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: dict[Connection, float] = {}
        self._closed = False
        self._thread: threading.Thread | None = None

    def arm(self, conn: Connection, deadline: float) -> None:
        with self._cond:
            if self._thread is None and not self._closed:  # started by the first request
                self._thread = threading.Thread(
                    target=self._run, name="catalog-deadlines", daemon=True
                )
                self._thread.start()
            self._armed[conn] = deadline
            self._cond.notify()

    def disarm(self, conn: Connection) -> None:
        with self._cond:
            self._armed.pop(conn, None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _run(self) -> None:
        with self._cond:
            while not self._closed:
                now = time.monotonic()
                for conn, deadline in list(self._armed.items()):
                    if deadline <= now:
                        del self._armed[conn]
                        conn.expire()
                soonest = min(self._armed.values(), default=None)
                self._cond.wait(None if soonest is None else soonest - now)


class Connection:
    """One keep-alive HTTP connection to the API, reopened whenever it breaks.

    A request gives up at `timeout` after it starts, however the server dribbles: the
    connect is bounded by the socket timeout (per address the host name resolves to), the
    rest by `deadlines`, which cuts the socket."""

    def __init__(self, base_url: str, timeout: float, deadlines: Deadlines) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"catalogue API URL must be http(s)://host[:port], got {base_url!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self._timeout = timeout
        self._deadlines = deadlines
        self._conn: http.client.HTTPConnection | None = None
        self._used = False  # the open connection has carried a whole exchange
        self._aborted = False
        self._expired = False  # the request in progress ran past its deadline
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
        """One request, answered or given up within the timeout."""
        with self._lock:
            self._expired = False
        self._deadlines.arm(self, time.monotonic() + self._timeout)
        try:
            reply = self._exchange(path)
        finally:
            self._deadlines.disarm(self)
        with self._lock:
            expired = self._expired
        if expired:
            # Even an answer that seems whole may be cut short (one read to the end of the
            # stream); the socket is shut down anyway.
            self.close()
            return Reply(0, error="timeout")
        return reply

    def _exchange(self, path: str) -> Reply:
        reused = self._conn is not None and self._used
        try:
            conn = self._conn or self._open()
            if conn.sock is None:
                conn.connect()
                with self._lock:
                    if self._expired:  # the deadline passed while there was no socket to cut
                        raise TimeoutError
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

    def expire(self) -> None:
        """From the deadline thread: the request in progress is out of time."""
        with self._lock:
            self._expired = True
        self._cut()

    def abort(self) -> None:
        """From another thread: make a request in progress fail now instead of hanging."""
        with self._lock:
            self._aborted = True
        self._cut()

    def _cut(self) -> None:
        with self._lock:
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
