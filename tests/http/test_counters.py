"""Honest counters: every answer is counted by status, the server's own refusals included,
and a request's time runs from its first byte read to the last byte of its answer handed
to the socket, so a slow client or an unread answer shows, not just the handler's time."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from movierec.http.server import ServerThread
from movierec.http.stats import LatencyHistogram
from tests.support.waiting import wait_until

Serve = Callable[..., ServerThread]
Connect = Callable[..., Any]  # returns conftest.RawConn

HOST = b"Host: a\r\n"


def _answer(connect: Connect, port: int, data: bytes) -> int:
    c = connect(port)
    c.send(data)
    status = c.response()[0]
    c.close()
    return status


def test_every_answer_is_counted_by_status_including_the_servers_own(
    serve: Serve, connect: Connect
) -> None:
    t = serve(max_body=10, header_timeout=0.3)
    sent = {
        200: b"GET / HTTP/1.1\r\n" + HOST + b"\r\n",
        500: b"GET /boom HTTP/1.1\r\n" + HOST + b"\r\n",
        400: b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        413: b"POST / HTTP/1.1\r\n" + HOST + b"Content-Length: 11\r\n\r\n",
        414: b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n",
        431: b"GET / HTTP/1.1\r\n" + HOST + b"X: " + b"v" * 17000 + b"\r\n\r\n",
        501: b"POST / HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n\r\n",
        505: b"GET / HTTP/2.0\r\n\r\n",
        408: b"GET / HTTP/1.1\r\n",  # never finished: the header timeout answers
    }
    for status, data in sent.items():
        assert _answer(connect, t.port, data) == status
    assert t.server.server_stats.statuses == dict.fromkeys(sent, 1)


def test_the_503_of_the_connection_cap_is_counted(serve: Serve, connect: Connect) -> None:
    t = serve(max_connections=1)
    busy = connect(t.port)
    busy.send(b"GET / HTTP/1.1\r\n")  # in the middle of a request: not to be displaced
    wait_until(
        lambda: len(t.server.connections) == 1 and not any(c.idle for c in t.server.connections),
        timeout=5,
        what="the only slot to be busy",
    )
    assert connect(t.port).response()[0] == 503
    assert t.server.server_stats.statuses == {503: 1}


def _only_observation(histogram: LatencyHistogram) -> float:
    wait_until(lambda: histogram.count == 1, timeout=5, what="one request to be timed")
    return histogram.sum


def test_latency_starts_at_the_first_byte_of_a_slow_request(serve: Serve, connect: Connect) -> None:
    t = serve()
    c = connect(t.port)
    c.send(b"GET / HTTP/1.1\r\n")
    wait_until(
        lambda: len(t.server.connections) == 1 and not any(x.idle for x in t.server.connections),
        timeout=5,
        what="the head to begin",
    )
    time.sleep(0.3)  # the slow client under test, not synchronisation
    c.send(HOST + b"\r\n")
    assert c.response()[0] == 200
    assert _only_observation(t.server.server_stats.latency) >= 0.3


def test_latency_ends_when_the_answer_has_left_for_the_socket(
    serve: Serve, connect: Connect
) -> None:
    t = serve(send_buffer=16384)
    c = connect(t.port)
    c.send(b"GET /big HTTP/1.1\r\n" + HOST + b"\r\n")  # 1 MiB the client leaves unread
    wait_until(lambda: t.server.stats()["backpressure_pauses"] == 1, what="the answer to back up")
    time.sleep(0.4)  # the client not reading, the behaviour under test
    status, _, body = c.response()
    assert status == 200 and len(body) == 1 << 20
    latency = t.server.server_stats.latency
    assert _only_observation(latency) >= 0.4
    assert dict(latency.cumulative())[0.25] == 0


@pytest.mark.parametrize("n", [1, 40])
def test_pipelined_answers_are_each_counted_and_timed(
    serve: Serve, connect: Connect, n: int
) -> None:
    t = serve(max_requests_per_turn=16)
    c = connect(t.port)
    c.send((b"GET /x HTTP/1.1\r\n" + HOST + b"\r\n") * n)
    assert [c.response()[0] for _ in range(n)] == [200] * n
    latency = t.server.server_stats.latency
    wait_until(lambda: latency.count == n, timeout=5, what=f"{n} requests to be timed")
    assert t.server.server_stats.statuses == {200: n}
