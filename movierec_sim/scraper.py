"""A hostile client of `GET /recommend/<userid>`: a scraper that walks user ids (in order,
or at random) to collect everyone's list, or a flood that asks as fast as many connections
can, to crowd the site's own requests out. A real HTTP/1.1 client over keep-alive
connections, on its own event loop.

    scraper = Scraper(ScraperConfig(url="http://127.0.0.1:8082", mode="sequential", rate=500))
    scraper.start(); ...; scraper.stop()
    scraper.counts.answered, scraper.answers[42]      # what it got, and the list of user 42

    python -m movierec_sim.scraper --url http://127.0.0.1:8082 --mode flood --connections 256
                                   --seconds 30     # prints its counts as one JSON object

The same client, in random mode over the site's users at a modest rate with the site's
600 ms timeout, stands for the site's own traffic in bench/bench_scraping.py: every answer's
latency is kept (`latencies`) so the site's p50 and p99 can be told.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import threading
import time
from array import array
from collections import Counter, deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal, cast, get_args
from urllib.parse import urlsplit

import numpy as np
import orjson
from pydantic import Field, ValidationError

from movierec.config import SettingsGroup
from movierec.http.server import new_event_loop

Mode = Literal["sequential", "random", "flood"]
_MAX_HEAD = 64 * 1024
# A slot whose connection failed waits this long before opening another (no busy loop
# against a server that refuses).
_RECONNECT_PAUSE = 0.05


class ScraperConfig(SettingsGroup):
    """Whom the client asks, for which ids, how fast, and what it keeps."""

    url: str = Field("http://127.0.0.1:8082", description="the recommendation service")
    mode: Mode = Field(
        "sequential",
        description="sequential: ids first_id, first_id+1, ... up to last_id, then stop; "
        "random: ids drawn uniformly from first_id..last_id; flood: random ids, answers "
        "not kept (the aim is load, not data)",
    )
    rate: float = Field(0.0, ge=0, description="requests per second, all connections (0: no limit)")
    connections: int = Field(1, ge=1, le=10_000, description="keep-alive connections in parallel")
    pipeline: int = Field(1, ge=1, le=64, description="requests written at once per connection")
    first_id: int = Field(1, ge=1, description="the lowest user id asked for")
    last_id: int = Field(1_000_000, ge=1, description="the highest user id asked for")
    timeout: float = Field(5.0, gt=0, description="seconds to wait for an answer")
    keep_answers: bool = Field(True, description="keep each user's list (not in flood mode)")
    keep_latencies: bool = Field(False, description="keep every answer's latency in seconds")
    seed: int = Field(0, description="seed of the random ids")


@dataclass
class ScrapeCounts:
    """What the client did; written by its event loop only, read by anyone."""

    sent: int = 0
    answered: int = 0  # complete answers, whatever their status
    statuses: Counter[int] = field(default_factory=Counter)
    timeouts: int = 0  # requests given up after `timeout` (their connection is dropped)
    errors: int = 0  # requests lost to a refused, reset or broken connection (sent or not)
    connections_opened: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "sent": self.sent,
            "answered": self.answered,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "timeouts": self.timeouts,
            "errors": self.errors,
            "connections_opened": self.connections_opened,
        }


class _Answers(asyncio.Protocol):
    """One connection: answers parsed from the bytes as they arrive, in request order."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.waiting: deque[asyncio.Future[tuple[int, bytes]]] = deque()
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while self.waiting:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buffer) > _MAX_HEAD:
                    self._fail(ValueError("answer head too long"))
                return
            try:
                status, length = _head(bytes(self.buffer[:end]))
            except ValueError as error:
                self._fail(error)
                return
            if len(self.buffer) < end + 4 + length:
                return
            body = bytes(self.buffer[end + 4 : end + 4 + length])
            del self.buffer[: end + 4 + length]
            future = self.waiting.popleft()
            if not future.done():
                future.set_result((status, body))

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        self._fail(exc or ConnectionResetError("closed by the server"))

    def _fail(self, error: Exception) -> None:
        self.lost = True
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_exception(error)
        if self.transport is not None:
            self.transport.abort()


class Scraper:
    """Runs on a daemon thread between start() and stop(); see the module's docstring."""

    def __init__(self, config: ScraperConfig) -> None:
        parts = urlsplit(config.url)
        if parts.scheme != "http" or not parts.hostname:
            raise ValueError(f"service URL must be http://HOST:PORT, got {config.url!r}")
        if config.last_id < config.first_id:
            raise ValueError(f"last_id {config.last_id} is below first_id {config.first_id}")
        self.config = config
        self.host, self.port = parts.hostname, parts.port or 80
        self.prefix = parts.path.rstrip("/")
        self.counts = ScrapeCounts()
        self.answers: dict[int, bytes] = {}  # user id -> the list's line, status 200 only
        self.latencies = array("d")  # seconds per complete answer (keep_latencies)
        self.ids = _ids(config)
        self.exhausted = False  # sequential mode has asked for every id up to last_id
        self._keep = config.keep_answers and config.mode != "flood"
        self._issued = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self.started_at = 0.0  # time.time() when the first request was due
        self.error: Exception | None = None  # what ended a connection's loop, if not a stop

    # ---- in-process use ------------------------------------------------------------------
    def start(self) -> Scraper:
        if self._thread is not None:
            raise RuntimeError("the scraper was already started")
        self._thread = threading.Thread(target=self._run, name="scraper", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise TimeoutError("the scraper's event loop did not start")
        return self

    def stop(self, timeout: float = 30.0) -> ScrapeCounts:
        loop, stopping, thread = self._loop, self._stopping, self._thread
        if loop is not None and stopping is not None and thread is not None:
            with contextlib.suppress(RuntimeError):  # its loop may have ended already
                loop.call_soon_threadsafe(stopping.set)
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(f"the scraper did not stop within {timeout} s")
        if self.error is not None:
            raise RuntimeError("the scraper failed") from self.error
        return self.counts

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def __enter__(self) -> Scraper:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---- the event loop ------------------------------------------------------------------
    def _run(self) -> None:
        loop = new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        finally:
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _main(self) -> None:
        self._stopping = asyncio.Event()
        self._start = time.perf_counter()
        self.started_at = time.time()
        self._ready.set()
        slots = [asyncio.create_task(self._slot()) for _ in range(self.config.connections)]
        stop = asyncio.create_task(self._stopping.wait())
        await asyncio.wait([stop, *slots], return_when=asyncio.FIRST_COMPLETED)
        self._stopping.set()
        # Each slot notices the stop at its next request; a slot waiting on an answer
        # is cancelled after the answer's timeout at the latest.
        _, late = await asyncio.wait(slots, timeout=self.config.timeout + 1)
        for task in late:
            task.cancel()
        outcomes = await asyncio.gather(*slots, stop, return_exceptions=True)
        failures = [o for o in outcomes if isinstance(o, Exception)]
        self.error = failures[0] if failures else None  # raised again by stop()

    def _next(self) -> tuple[int, float] | None:
        """The next user id and when it is due (perf_counter), or None when done."""
        user = next(self.ids, None)
        if user is None:
            self.exhausted = True
            return None
        rate = self.config.rate
        due = self._start + self._issued / rate if rate > 0 else 0.0
        self._issued += 1
        return user, due

    async def _slot(self) -> None:
        """One connection's loop: take the next ids (when due), connect if need be, ask."""
        config, counts = self.config, self.counts
        assert self._stopping is not None
        loop = asyncio.get_running_loop()
        transport: asyncio.Transport | None = None
        conn: _Answers | None = None
        try:
            while not self._stopping.is_set():
                batch = await self._batch()
                if not batch:
                    return
                if conn is None or conn.lost:
                    if transport is not None:
                        transport.close()
                    try:
                        transport, conn = await asyncio.wait_for(
                            loop.create_connection(_Answers, self.host, self.port), config.timeout
                        )
                    except (OSError, TimeoutError):
                        transport, conn = None, None
                        counts.errors += len(batch)  # never sent: nobody to send them to
                        await asyncio.sleep(_RECONNECT_PAUSE)
                        continue
                    counts.connections_opened += 1
                await self._exchange(transport, conn, batch)
        finally:
            if transport is not None:
                transport.close()

    async def _batch(self) -> list[int]:
        """Up to `pipeline` ids, each sent no earlier than it is due."""
        batch: list[int] = []
        assert self._stopping is not None
        for _ in range(self.config.pipeline):
            nxt = self._next()
            if nxt is None:
                break
            user, due = nxt
            wait = due - time.perf_counter()
            if wait > 0:
                await asyncio.sleep(wait)
            batch.append(user)
            if self._stopping.is_set():
                break
        return batch

    async def _exchange(
        self, transport: asyncio.Transport, conn: _Answers, batch: list[int]
    ) -> None:
        config, counts = self.config, self.counts
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in batch]
        conn.waiting.extend(futures)
        started = time.perf_counter()
        host = f"{self.host}:{self.port}"
        transport.write(
            b"".join(
                f"GET {self.prefix}/recommend/{user} HTTP/1.1\r\nHost: {host}\r\n\r\n".encode()
                for user in batch
            )
        )
        counts.sent += len(batch)
        for done, (user, future) in enumerate(zip(batch, futures, strict=True)):
            try:
                left = started + config.timeout - time.perf_counter()
                status, body = await asyncio.wait_for(future, max(left, 0.0))
            except (TimeoutError, OSError, ValueError) as error:
                # The rest of the batch is lost with the connection: drop it.
                lost = len(batch) - done
                if isinstance(error, TimeoutError):
                    counts.timeouts += lost
                else:
                    counts.errors += lost
                conn._fail(error)
                for other in futures:  # retrieved, so none is reported as never awaited
                    if other.done() and not other.cancelled():
                        other.exception()
                return
            counts.answered += 1
            counts.statuses[status] += 1
            if config.keep_latencies:
                self.latencies.append(time.perf_counter() - started)
            if status == 200 and self._keep:
                self.answers[user] = body.split(b"\n", 1)[0]


def _ids(config: ScraperConfig) -> Iterator[int]:
    if config.mode == "sequential":
        return iter(range(config.first_id, config.last_id + 1))
    return _random_ids(config.first_id, config.last_id, config.seed)


def _random_ids(low: int, high: int, seed: int) -> Iterator[int]:
    rng = np.random.default_rng(seed)
    while True:  # drawn in blocks: one numpy call per 4,096 ids
        yield from rng.integers(low, high + 1, 4096).tolist()


def _head(head: bytes) -> tuple[int, int]:
    """(status, Content-Length) of an answer's head; every answer of ours carries a length."""
    if not head.startswith(b"HTTP/1.") or len(head) < 12 or not head[9:12].isdigit():
        raise ValueError(f"invalid HTTP answer: {head[:80]!r}")
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(head[9:12]), int(value)
    raise ValueError("answer without Content-Length")


def main(argv: list[str] | None = None) -> int:
    """`python -m movierec_sim.scraper`: run for --seconds (or until sequential ids run
    out, or Ctrl-C), then print the counts as one JSON object."""
    parser = argparse.ArgumentParser(prog="python -m movierec_sim.scraper", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="how long to run")
    for name, info in ScraperConfig.model_fields.items():
        flag = "--" + name.replace("_", "-")
        choices = get_args(info.annotation) or None
        kind = bool if info.annotation is bool else type(info.default)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, help=info.description)
        else:
            parser.add_argument(flag, type=kind, choices=choices, help=info.description)
    args = vars(parser.parse_args(argv))
    seconds = args.pop("seconds")
    try:
        config = ScraperConfig(**{k: v for k, v in args.items() if v is not None})
        scraper = Scraper(config)
    except (ValidationError, ValueError) as error:
        print(f"scraper: {error}", file=sys.stderr)
        return 2
    scraper.start()
    # A line for whoever waits on this command: the attack has begun.
    print(f"scraping {config.url} since {scraper.started_at:.6f}", file=sys.stderr, flush=True)
    deadline = time.monotonic() + seconds
    with contextlib.suppress(KeyboardInterrupt):
        while scraper.running and time.monotonic() < deadline:
            time.sleep(0.1)  # the command's own clock, not a test's synchronisation
    counts = scraper.stop()
    out = {**counts.as_dict(), "started_at": scraper.started_at}
    out["seconds"] = round(time.time() - scraper.started_at, 3)
    out["users_kept"] = len(scraper.answers)
    print(orjson.dumps(out).decode())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
