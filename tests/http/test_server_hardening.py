"""Hostile clients: every limit, timeout and malformed input, against the real server."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec.http.server import ServerThread
from tests.support.waiting import wait_until

Serve = Callable[..., ServerThread]
Connect = Callable[[int], Any]  # returns conftest.RawConn


def _refused(c: Any, data: bytes, status: int) -> None:
    c.send(data)
    got, headers, _ = c.response()
    assert got == status
    assert headers["connection"] == "close"
    assert c.closed()


@pytest.mark.parametrize(
    "data",
    [
        b"GET /\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / HTTP/1.1 extra\r\n\r\n",
        b"G\xc3\xa9T / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET relative HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET / FOO/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nNoColon\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n: empty-name\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"GET / HTTP/1.1\r\nHost: x\n\n",
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    ],
)
def test_malformed_request_is_400_and_closed(serve: Serve, connect: Connect, data: bytes) -> None:
    t = serve()
    _refused(connect(t.port), data, 400)
    assert t.server.stats()["bad_requests"] == 1


def test_identical_repeated_content_length_is_refused(serve: Serve, connect: Connect) -> None:
    # RFC 9110 8.6 allows either; llhttp refuses, and two parsers disagreeing on framing
    # is what smuggling needs, so we refuse too.
    c = connect(serve().port)
    data = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok"
    _refused(c, data, 400)


def test_unsupported_version_is_505(serve: Serve, connect: Connect) -> None:
    _refused(connect(serve().port), b"GET / HTTP/2.0\r\n\r\n", 505)


def test_transfer_encoding_is_501(serve: Serve, connect: Connect) -> None:
    data = b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    _refused(connect(serve().port), data, 501)


def test_long_request_line_is_414(serve: Serve, connect: Connect) -> None:
    _refused(connect(serve().port), b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414)


def test_long_request_line_refused_before_it_ends(serve: Serve, connect: Connect) -> None:
    # No CRLF ever arrives: the server must not wait for one.
    _refused(connect(serve(max_request_line=100).port), b"GET /" + b"a" * 200, 414)


def test_large_header_block_is_431(serve: Serve, connect: Connect) -> None:
    headers = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 1000) for i in range(20))
    _refused(connect(serve().port), b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n", 431)


def test_header_block_refused_before_it_ends(serve: Serve, connect: Connect) -> None:
    c = connect(serve(max_header_bytes=1000).port)
    _refused(c, b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"v" * 2000, 431)


def test_too_many_headers_is_431(serve: Serve, connect: Connect) -> None:
    headers = b"".join(b"X-%d: v\r\n" % i for i in range(11))
    _refused(
        connect(serve(max_headers=10).port),
        b"GET / HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n",
        431,
    )


def test_body_within_limit_is_read(serve: Serve, connect: Connect) -> None:
    c = connect(serve(max_body=100).port)
    c.send(
        b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n"
        + b"b" * 100
        + b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    assert [c.response()[2] for _ in range(2)] == [b"POST /a", b"GET /b"]


def test_body_over_limit_is_413(serve: Serve, connect: Connect) -> None:
    c = connect(serve(max_body=100).port)
    _refused(c, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 101\r\n\r\n" + b"b" * 101, 413)


def test_huge_content_length_is_413(serve: Serve, connect: Connect) -> None:
    c = connect(serve().port)
    _refused(c, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: " + b"9" * 40 + b"\r\n\r\n", 413)


def test_idle_keep_alive_connection_is_closed(serve: Serve, connect: Connect) -> None:
    c = connect(serve(keepalive_timeout=0.3).port)
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.response()[0] == 200
    started = time.monotonic()
    assert c.closed(timeout=3)
    assert 0.2 < time.monotonic() - started < 1.5


def test_slowloris_is_cut_off_while_others_are_served(serve: Serve, connect: Connect) -> None:
    t = serve(header_timeout=0.5, keepalive_timeout=10)
    slow = connect(t.port)
    slow.send(b"GET / HTTP/1.1\r\n")
    started = time.monotonic()
    cut = None
    while time.monotonic() - started < 4:
        try:
            slow.send(b"X-Drip: 1\r\n")  # a header line every 50 ms: never completes
        except OSError:
            cut = time.monotonic() - started
            break
        other = connect(t.port)
        other.send(b"GET /other HTTP/1.1\r\nHost: x\r\n\r\n")
        assert other.response()[2] == b"GET /other"
        other.close()
        if slow.closed(timeout=0.05):
            cut = time.monotonic() - started
            break
    assert cut is not None and 0.4 < cut < 2.0
    assert b"408" in slow.buf.split(b"\r\n", 1)[0]
    assert t.server.stats()["timeouts"] == 1


def test_half_sent_request_times_out(serve: Serve, connect: Connect) -> None:
    c = connect(serve(header_timeout=0.3).port)
    c.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc")
    assert c.response()[0] == 408
    assert c.closed()


def test_connection_cap(serve: Serve, connect: Connect) -> None:
    t = serve(max_connections=3)
    held = [connect(t.port) for _ in range(3)]
    for c in held:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert c.response()[0] == 200
        c.send(b"GET / HTTP/1.1\r\n")  # in the middle of a request: not to be displaced
    wait_until(
        lambda: not any(c.idle for c in t.server.connections),
        timeout=3.0,
        what="every slot to be busy (idle ones would make room: tests/http/test_admission.py)",
    )
    extra = connect(t.port)
    assert extra.response()[0] == 503
    assert extra.closed()
    held[0].close()

    def fresh_connection_served() -> bool:
        c = connect(t.port)
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status = c.response()[0]
        c.close()
        return status == 200

    # The server learns of the close asynchronously.
    wait_until(fresh_connection_served, timeout=3.0, what="a freed slot to serve a newcomer")
    assert t.server.stats()["connections_rejected"] >= 1


def test_client_that_never_reads_is_dropped(serve: Serve) -> None:
    t = serve(write_timeout=0.5)
    sock = socket.create_connection(("127.0.0.1", t.port))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(0.2)
    # 200 pipelined requests for 1 MiB answers: the server must stop reading, not buffer 200 MiB.
    try:
        for _ in range(200):
            sock.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
    except (TimeoutError, OSError):
        pass
    wait_until(
        lambda: t.server.stats()["timeouts"] > 0, timeout=5.0, what="the write timeout to fire"
    )
    sock.close()
    assert t.server.stats()["timeouts"] == 1
    assert t.server.stats()["requests"] < 50


_VALID = (
    b"POST /echo?q=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"
    b"GET /slow?0 HTTP/1.0\r\n\r\n"
)


@st.composite
def _mutated(draw: st.DrawFn) -> bytes:
    data = bytearray(_VALID)
    for _ in range(draw(st.integers(1, 6))):
        pos = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        byte = draw(st.binary(min_size=1, max_size=3))
        if op == "insert":
            data[pos:pos] = byte
        elif op == "delete":
            del data[pos : pos + len(byte)]
        else:
            data[pos : pos + len(byte)] = byte
    return bytes(data)


@pytest.fixture
def garbage_server(serve: Serve) -> ServerThread:
    # One server for all examples of the test: state left by one example must not hurt the next.
    return serve(header_timeout=2, max_body=1000)


_HEALTH = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@settings(max_examples=150, deadline=None, suppress_health_check=_HEALTH)
@given(st.one_of(st.binary(max_size=3000), _mutated()))
def test_garbage_never_breaks_the_server(garbage_server: ServerThread, data: bytes) -> None:
    port = garbage_server.port
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            received = b""
            while chunk := sock.recv(65536):  # the server must close: a timeout fails the test
                received += chunk
        except ConnectionResetError:
            received = b""
    if received:
        assert received.startswith(b"HTTP/1.1 ")
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"GET /alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    assert reply.startswith(b"HTTP/1.1 200 ") and reply.endswith(b"GET /alive")
