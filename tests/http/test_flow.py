"""Fairness and bounds against the real server on loopback: a pipelining connection shares
the loop, unread answers stop a connection being read, a trickle reader cannot extend the
write deadline, a body is refused at once where none is taken, and buffered memory has a
bound. Each attack runs at a small scale while a well-behaved request still gets answered,
and the server's counters count what it did."""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable
from typing import Any

import pytest

from movierec.http.server import Request, Response, ServerThread
from tests.support.waiting import wait_until

Serve = Callable[..., ServerThread]
Connect = Callable[..., Any]  # returns conftest.RawConn

KB_ANSWER = Response(200, b"a" * 1024)


def _request(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: a\r\n\r\n".encode()


def _served(c: Any, path: str = "/ok") -> None:
    c.send(_request(path))
    assert c.response()[0] == 200


def _non_reader(port: int, rcvbuf: int = 4096) -> socket.socket:
    """A client whose small receive buffer fills at once: the server must hold the rest."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.connect(("127.0.0.1", port))
    return sock


def _send_what_it_takes(sock: socket.socket, data: bytes, timeout: float = 0.5) -> None:
    """Send until the server stops reading (the send blocks for `timeout`) or all is sent."""
    sock.settimeout(timeout)
    with contextlib.suppress(TimeoutError):
        sock.sendall(data)


def test_a_pipelining_connection_shares_the_loop(serve: Serve, connect: Connect) -> None:
    order: list[str] = []

    def costly(request: Request) -> Response:
        order.append(request.path)
        if request.path.startswith("/p/"):
            time.sleep(0.002)  # the CPU an answer costs, not synchronisation
        return Response(200, b"ok")

    t = serve(costly, max_requests_per_turn=16)
    pipeliner = connect(t.port)
    pipeliner.send(b"".join(_request(f"/p/{i}") for i in range(300)))  # 0.6 s of work
    wait_until(lambda: order, timeout=5, what="the pipelined requests to start")
    probe = connect(t.port)
    _served(probe, "/probe")
    # Served in its turn, not after the whole pipeline.
    assert order.index("/probe") < 150
    answers = [pipeliner.response(timeout=10)[0] for _ in range(300)]
    assert answers == [200] * 300
    assert [p for p in order if p != "/probe"] == [f"/p/{i}" for i in range(300)]
    assert t.server.stats()["turns_deferred"] >= 300 // 16 - 1


def test_unread_answers_stop_the_connection_being_read(serve: Serve, connect: Connect) -> None:
    t = serve(lambda r: KB_ANSWER, write_buffer_high=8192, send_buffer=8192)
    sock = _non_reader(t.port)
    # 20,000 requests for 1 KB answers: unbounded, the server would answer them all.
    _send_what_it_takes(sock, _request("/x") * 20_000)
    wait_until(
        lambda: t.server.stats()["backpressure_pauses"] >= 1,
        timeout=5,
        what="the server to stop reading a client that does not read",
    )
    _served(connect(t.port))
    stats = t.server.stats()
    # Kernel buffers, the transport's 8 KB and one turn's answers: a few dozen KB of them.
    assert stats["requests"] < 500
    assert stats["buffered_bytes"] < 512 * 1024
    sock.close()


def test_a_trickle_reader_cannot_extend_the_write_deadline(serve: Serve, connect: Connect) -> None:
    # 64 KB answers: what one turn backs up takes a trickle many seconds to drain, so the
    # deadline must fire while the client is still reading, a little at a time.
    answer = Response(200, b"a" * 65536)
    t = serve(lambda r: answer, write_buffer_high=8192, send_buffer=8192, write_timeout=1.0)
    sock = _non_reader(t.port)
    _send_what_it_takes(sock, _request("/x") * 200)
    wait_until(
        lambda: t.server.stats()["backpressure_pauses"] >= 1, timeout=5, what="stuck answers"
    )
    stuck = time.monotonic()
    sock.settimeout(0.05)
    got = 0
    while not t.server.stats()["timeouts"] and time.monotonic() - stuck < 6:
        with contextlib.suppress(TimeoutError):
            got += len(sock.recv(256))  # 256 bytes every 50 ms: reading, but a trickle
        time.sleep(0.05)  # the trickle's pace, not synchronisation
    elapsed = time.monotonic() - stuck
    sock.close()
    assert got > 0 and t.server.stats()["timeouts"] == 1
    assert 0.5 < elapsed < 3.0
    wait_until(lambda: t.server.stats()["connections_open"] == 0, timeout=5, what="the drop")
    assert t.server.stats()["requests"] <= 2 * 16  # one turn, perhaps two: never the 200
    _served(connect(t.port))


@pytest.mark.parametrize(
    "head",
    [
        b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n",
        b"POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    ],
)
def test_a_body_is_refused_at_once_where_none_is_taken(
    serve: Serve, connect: Connect, head: bytes
) -> None:
    seen: list[str] = []

    def handler(request: Request) -> Response:
        seen.append(request.path)
        return Response(200, b"ok")

    t = serve(handler, max_body=0)
    c = connect(t.port)
    c.send(head + b"b" * 1000)  # the body has only begun: the answer must not wait for it
    status, headers, _ = c.response()
    assert status == 413 and headers["connection"] == "close"
    assert c.closed()
    assert seen == []
    assert t.server.server_stats.statuses == {413: 1}
    assert t.server.stats()["buffered_bytes"] == 0
    c = connect(t.port)
    c.send(b"POST /empty HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n")
    assert c.response()[0] == 200 and seen == ["/empty"]


def test_buffered_memory_is_bounded(serve: Serve, connect: Connect) -> None:
    t = serve(max_body=200_000, max_buffered=500_000)
    head = b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 200000\r\n\r\n"
    holders = [connect(t.port) for _ in range(5)]
    for c in holders:
        c.send(head + b"b" * 150_000)  # 5 x 150 KB of bodies that never finish
    wait_until(
        lambda: t.server.stats()["connections_shed"] >= 1,
        timeout=5,
        what="the memory bound to shed a connection",
    )
    wait_until(
        lambda: sum(c.closed(timeout=0.05) for c in holders) >= 1,
        timeout=5,
        what="a shed connection to be closed",
    )
    stats = t.server.stats()
    assert stats["buffered_bytes"] <= 500_000
    assert t.server.server_stats.statuses[503] == stats["connections_shed"]
    _served(connect(t.port))
