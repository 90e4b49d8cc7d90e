"""HTTP/1.1 behaviour of the server core, against the real server on loopback."""

from __future__ import annotations

import asyncio
import http.client
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from movierec.http.server import HTTPServer, Request, Response, ServerThread
from tests.support.waiting import wait_until

Serve = Callable[..., ServerThread]
Connect = Callable[[int], Any]  # returns conftest.RawConn


def test_get_has_length_type_date_and_server(serve: Serve) -> None:
    t = serve()
    conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=5)
    conn.request("GET", "/hello?x=1")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.read() == b"GET /hello?x=1"
    assert resp.getheader("Content-Length") == str(len(b"GET /hello?x=1"))
    assert resp.getheader("Content-Type") == "text/plain; charset=utf-8"
    assert resp.getheader("Date", "").endswith("GMT")
    assert resp.getheader("Server") == "movierec"


def test_keep_alive_reuses_one_connection(serve: Serve) -> None:
    t = serve()
    conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=5)
    ports = set()
    for i in range(20):
        conn.request("GET", f"/echo?i={i}")
        resp = conn.getresponse()
        body = orjson.loads(resp.read())
        assert body["query"] == f"i={i}"
        assert resp.getheader("Connection") is None
        ports.add(body["client_port"])
    assert len(ports) == 1
    assert t.server.stats()["connections"] == 1


def test_request_fields(serve: Serve, connect: Connect) -> None:
    c = connect(serve().port)
    c.send(b"POST /echo?a=1&b=2 HTTP/1.1\r\nHost: x\r\nX-Thing:  v1 \r\nx-thing: v2\r\n")
    c.send(b"Content-Length: 5\r\n\r\nhello")
    status, _, body = c.response()
    got = orjson.loads(body)
    assert status == 200
    assert (got["method"], got["path"], got["query"]) == ("POST", "/echo", "a=1&b=2")
    assert got["version"] == "HTTP/1.1"
    assert got["headers"]["x-thing"] == "v1, v2"
    assert got["body"] == "hello"


def test_absolute_form_target(serve: Serve, connect: Connect) -> None:
    c = connect(serve().port)
    c.send(b"GET http://example.com/echo?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n")
    got = orjson.loads(c.response()[2])
    assert (got["path"], got["query"]) == ("/echo", "q=1")


def test_connection_close_is_honoured(serve: Serve, connect: Connect) -> None:
    c = connect(serve().port)
    c.send(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    status, headers, body = c.response()
    assert (status, body, headers["connection"]) == (200, b"GET /a", "close")
    assert c.closed()


def test_pipelined_requests_answered_in_order(serve: Serve, connect: Connect) -> None:
    c = connect(serve().port)
    c.send(b"".join(b"GET /p%d HTTP/1.1\r\nHost: x\r\n\r\n" % i for i in range(50)))
    assert [c.response()[2] for _ in range(50)] == [b"GET /p%d" % i for i in range(50)]


def test_pipelining_keeps_order_across_async_handlers(serve: Serve, connect: Connect) -> None:
    c = connect(serve().port)
    c.send(
        b"GET /slow?0.2 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n"
        b"GET /slow?0.05 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
        b"GET /last HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    bodies = [c.response()[2] for _ in range(5)]
    assert bodies[:3] == [b"slow /slow?0.2", b"GET /fast", b"slow /slow?0.05"]
    assert orjson.loads(bodies[3])["body"] == "abc"
    assert bodies[4] == b"GET /last"


def test_request_split_across_many_packets(serve: Serve, connect: Connect) -> None:
    c = connect(serve().port)
    for byte in b"GET /split HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nok":
        c.send(bytes([byte]))
    assert c.response()[2] == b"GET /split"


def test_http10_closes_by_default(serve: Serve, connect: Connect) -> None:
    c = connect(serve().port)
    c.send(b"GET /old HTTP/1.0\r\n\r\n")
    status, headers, body = c.response()
    assert (status, body, headers["connection"]) == (200, b"GET /old", "close")
    assert c.closed()


def test_http10_keep_alive_when_asked(serve: Serve, connect: Connect) -> None:
    c = connect(serve().port)
    for i in range(3):
        c.send(b"GET /old%d HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" % i)
        status, headers, body = c.response()
        assert (status, body, headers["connection"]) == (200, b"GET /old%d" % i, "keep-alive")


def test_head_sends_length_but_no_body(serve: Serve, connect: Connect) -> None:
    c = connect(serve().port)
    c.send(b"HEAD /big HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = c.response(head=True)
    assert (status, body, headers["content-length"]) == (200, b"", str(1 << 20))
    assert c.response()[2] == b"GET /after"


def test_expect_100_continue(serve: Serve, connect: Connect) -> None:
    c = connect(serve().port)
    c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n")
    assert c.response()[0] == 100
    c.send(b"data")
    status, _, body = c.response()
    assert status == 200 and orjson.loads(body)["body"] == "data"


def test_async_handler(serve: Serve) -> None:
    t = serve()
    conn = http.client.HTTPConnection("127.0.0.1", t.port, timeout=5)
    conn.request("GET", "/slow?0.05")
    assert conn.getresponse().read() == b"slow /slow?0.05"


@pytest.mark.parametrize("path", ["/boom", "/async-boom", "/not-a-response", "/bad-header"])
def test_handler_failure_is_500_and_logged(
    serve: Serve, connect: Connect, caplog: pytest.LogCaptureFixture, path: str
) -> None:
    caplog.set_level(logging.ERROR, logger="movierec.http")
    t = serve()
    c = connect(t.port)
    c.send(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % path.encode())
    status, _, body = c.response()
    assert status == 500
    assert body.startswith(b"internal server error: ") and body.count(b"\n") == 1
    assert any("handler failed" in r.getMessage() for r in caplog.records)
    # The connection survives a handler failure.
    c.send(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.response()[2] == b"GET /ok"
    assert t.server.stats()["handler_errors"] == 1


@pytest.mark.parametrize("path", [b"/drop", b"/async-drop"])
def test_close_connection_drops_without_answer(serve: Serve, connect: Connect, path: bytes) -> None:
    c = connect(serve().port)
    c.send(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert c.closed()
    assert c.buf == b""


def handlers_in_flight(thread: ServerThread) -> int:
    """Async handlers running now, counted on the server's own loop (the set is its)."""

    async def count() -> int:
        return len(thread.server.tasks)

    return int(thread.call(count()))


def refuses_connections(port: int) -> bool:
    """True once nothing listens on `port` (the server closed its listening socket)."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    except ConnectionResetError:
        # The probe reached the backlog just as the listener closed: it is closing; the
        # next probe is refused once it is gone.
        return False
    return False


def test_stop_frees_the_port_and_cancels_pending_handlers(serve: Serve, connect: Connect) -> None:
    t = serve()
    port = t.port
    c = connect(port)
    c.send(b"GET /slow?30 HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_until(
        lambda: handlers_in_flight(t) == 1,
        timeout=5.0,
        every=0.005,
        what="the slow handler to start",
    )
    started = time.monotonic()
    t.stop()
    assert time.monotonic() - started < 3
    assert c.closed()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()


def test_graceful_stop_finishes_in_flight_request(serve: Serve, connect: Connect) -> None:
    # The handler answers only when released, and the test releases it once stop() has
    # closed the listener: the request is provably still in flight while stop() runs.
    release = asyncio.Event()

    async def held_until_released(request: Request) -> Response:
        await release.wait()
        return Response(200, b"finished")

    t = serve(held_until_released)
    port = t.port
    c = connect(port)
    c.send(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n")
    wait_until(
        lambda: handlers_in_flight(t) == 1, timeout=5.0, every=0.005, what="the handler to start"
    )
    stopper = threading.Thread(target=t.stop, kwargs={"grace": 5.0}, name="stopper")
    stopper.start()
    wait_until(
        lambda: refuses_connections(port),
        timeout=5.0,
        every=0.005,
        what="stop() to close the listening socket",
    )
    assert handlers_in_flight(t) == 1
    t.loop.call_soon_threadsafe(release.set)
    assert c.response()[2] == b"finished"
    stopper.join(10)
    assert not stopper.is_alive(), "stop() did not return after the last answer"


def test_reuse_port_lets_two_servers_share_a_port(serve: Serve) -> None:
    first = ServerThread(HTTPServer(lambda r: Response(200, b"1"), reuse_port=True)).start()
    try:
        second = ServerThread(
            HTTPServer(lambda r: Response(200, b"2"), port=first.port, reuse_port=True)
        ).start()
        assert second.port == first.port
        second.stop()
    finally:
        first.stop()


def test_run_forever_stops_cleanly_on_sigterm(tmp_path: object) -> None:
    code = (
        "from movierec.http.server import HTTPServer, Response, run_forever\n"
        "run_forever(HTTPServer(lambda r: Response(200, b'up')),"
        " ready=lambda s: print(s.port, flush=True))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, env=dict(os.environ)
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/")
        assert conn.getresponse().read() == b"up"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()


def test_start_on_a_taken_port_raises_oserror(serve: Serve) -> None:
    taken = serve().port
    with pytest.raises(OSError):
        ServerThread(HTTPServer(lambda r: Response(200), port=taken)).start()
