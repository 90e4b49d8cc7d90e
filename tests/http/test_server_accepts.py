"""Newcomers under a load that makes every event loop iteration long: accepted together
(Limits.max_accepts_per_iteration), not one per iteration as the loop's own server does."""

from __future__ import annotations

import asyncio
import http.client
import threading
import time
from collections.abc import Iterator

import pytest

from movierec.http.messages import Limits
from movierec.http.server import HTTPServer, Request, Response, ServerThread
from tests.support.waiting import wait_until

BUSY_SECONDS = 0.015  # per loaded request: four of them make an iteration ~60 ms
LOADERS = 4
NEWCOMERS = 20
SITE_TIMEOUT = 0.6


def handler(request: Request) -> Response:
    if request.path == "/busy":
        # Blocks the event loop on purpose (a sleep, so the GIL stays free for the
        # clients): this is the load that makes iterations long, not a synchronisation.
        time.sleep(BUSY_SECONDS)
    return Response(200, b"ok")


class Load:
    """Keep-alive clients asking /busy back to back until stopped."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.done = 0
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(LOADERS)]

    def _run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        while not self.stop.is_set():
            conn.request("GET", "/busy")
            conn.getresponse().read()
            self.done += 1
        conn.close()

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        wait_until(lambda: self.done >= 2 * LOADERS, timeout=10, what="the load to run")
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


async def newcomer(port: int) -> float:
    """Connect, ask once, read the answer: the seconds it all took."""
    started = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await reader.readuntil(b"\r\n\r\nok")
    writer.close()
    return time.perf_counter() - started


async def newcomers(port: int) -> list[float]:
    return list(await asyncio.gather(*(newcomer(port) for _ in range(NEWCOMERS))))


@pytest.fixture
def served() -> Iterator[ServerThread]:
    threads: list[ServerThread] = []

    def start(**limits: int) -> ServerThread:
        thread = ServerThread(HTTPServer(handler, **limits)).start()
        threads.append(thread)
        return thread

    yield start  # type: ignore[misc]
    for thread in threads:
        thread.stop()


def test_newcomers_arriving_together_are_all_answered_within_the_site_s_timeout(served):
    thread = served()
    with Load(thread.port):
        waits = asyncio.run(newcomers(thread.port))
    assert max(waits) < SITE_TIMEOUT, sorted(round(w, 3) for w in waits)


def test_one_accept_per_iteration_makes_the_last_newcomer_time_out(served):
    """The bound is what keeps them in time: accepting one per iteration (libuv's way),
    the 20th newcomer waits some 20 iterations of ~60 ms."""
    thread = served(max_accepts_per_iteration=1)
    with Load(thread.port):
        waits = asyncio.run(newcomers(thread.port))
    assert max(waits) > SITE_TIMEOUT, sorted(round(w, 3) for w in waits)


def test_the_bound_is_checked():
    with pytest.raises(ValueError, match="max_accepts_per_iteration"):
        Limits(max_accepts_per_iteration=0)
