"""Fixtures for the HTTP server tests: a real server on loopback and a raw-socket client.

The raw client exists because http.client refuses to send malformed requests and hides
connection state; hardening tests need both.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from movierec.http.server import CloseConnection, HTTPServer, Request, Response, ServerThread

BIG = b"x" * (1 << 20)


async def _slow(request: Request) -> Response:
    delay = float(request.query or "0.1")
    await asyncio.sleep(delay)
    return Response(200, f"slow {request.target}".encode())


async def _async_boom(request: Request) -> Response:
    await asyncio.sleep(0)
    raise KeyError("async boom")


async def _async_drop(request: Request) -> Response:
    await asyncio.sleep(0)
    raise CloseConnection


def app(request: Request) -> Any:
    """The test application: a route per server behaviour under test."""
    path = request.path
    if path == "/slow":
        return _slow(request)
    if path == "/boom":
        raise RuntimeError("boom")
    if path == "/async-boom":
        return _async_boom(request)
    if path == "/drop":
        raise CloseConnection
    if path == "/async-drop":
        return _async_drop(request)
    if path == "/not-a-response":
        return "oops"
    if path == "/bad-header":
        return Response(200, b"x", headers=[("X-Evil", "a\r\nInjected: 1")])
    if path == "/big":
        return Response(200, BIG)
    if path == "/work":
        # A handler that takes 50 us or more, as a model lookup does. It waits rather than
        # computes: a computing handler would hold the GIL that this test process's
        # clients need, and they would measure the GIL instead of the server.
        time.sleep(50e-6)
        return Response(200, b"worked")
    if path == "/echo":
        return Response.json(
            {
                "method": request.method,
                "target": request.target,
                "path": request.path,
                "query": request.query,
                "version": request.version,
                "headers": request.headers,
                "body": request.body.decode("latin-1"),
                "client_port": request.client[1] if request.client else None,
            }
        )
    return Response(200, f"{request.method} {request.target}".encode())


class RawConn:
    """A client socket that sends raw bytes and parses responses itself."""

    def __init__(self, port: int, source: str | None = None) -> None:
        # `source`: another loopback address (127.0.0.2, ...) to connect from, so the
        # server sees a different peer.
        self.sock = socket.create_connection(
            ("127.0.0.1", port), timeout=5, source_address=(source, 0) if source else None
        )
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def _fill(self, timeout: float) -> bool:
        self.sock.settimeout(timeout)
        chunk = self.sock.recv(65536)
        self.buf += chunk
        return bool(chunk)

    def response(
        self, head: bool = False, timeout: float = 5.0
    ) -> tuple[int, dict[str, str], bytes]:
        """Read one response; `head` means the request was HEAD, so no body follows."""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self.buf:
            if not self._fill(max(0.01, deadline - time.monotonic())):
                raise ConnectionError(f"closed before a response; got {self.buf!r}")
        raw_head, _, self.buf = self.buf.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        size = 0 if head or status == 100 else int(headers["content-length"])
        while len(self.buf) < size:
            if not self._fill(max(0.01, deadline - time.monotonic())):
                raise ConnectionError("closed in the middle of a body")
        body, self.buf = self.buf[:size], self.buf[size:]
        return status, headers, body

    def closed(self, timeout: float = 3.0) -> bool:
        """True when the server closes the connection (EOF or reset) within `timeout`."""
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                if not self._fill(max(0.01, deadline - time.monotonic())):
                    return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False
        return False

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def serve() -> Iterator[Callable[..., ServerThread]]:
    """Factory: serve(handler=app, **limits) starts a real server; all are stopped after
    the test, which also fails if the event loop reported any unhandled error."""
    threads: list[ServerThread] = []
    errors: list[dict[str, Any]] = []

    def start(handler: Callable[[Request], Any] = app, **limits: Any) -> ServerThread:
        thread = ServerThread(HTTPServer(handler, **limits)).start()
        thread.loop.set_exception_handler(lambda _loop, ctx: errors.append(ctx))
        threads.append(thread)
        return thread

    yield start
    for thread in threads:
        thread.stop()
    assert not errors, errors


@pytest.fixture
def connect() -> Iterator[Callable[..., RawConn]]:
    conns: list[RawConn] = []

    def open_conn(port: int, source: str | None = None) -> RawConn:
        conn = RawConn(port, source)
        conns.append(conn)
        return conn

    yield open_conn
    for conn in conns:
        conn.close()
