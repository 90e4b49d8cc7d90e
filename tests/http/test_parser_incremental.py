"""Incremental head scanning: a head trickled in pieces costs work linear in its size,
and splitting the bytes differently never changes the verdict."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.http.parser import HeadScanner, HttpError, parse_head
from movierec.http.server import ServerThread
from tests.support.http_heads import SPECIAL, heads
from tests.support.waiting import wait_until

Serve = Callable[..., ServerThread]
_LINE = 200
_HEADERS = 600


def _verdict(scanner: HeadScanner, data: bytes) -> tuple[str, int]:
    """What the server decides about the head at the start of `data` with its limits:
    ("wait", -1), ("refuse", -1) or ("accept", end). The complete-head size checks are
    the ones protocol.py applies once the CRLFCRLF has arrived."""
    try:
        end = scanner.scan(data, 0)
        if end == -1:
            return ("wait", -1)
        line_end = data.find(b"\r\n")
        if line_end > _LINE or end - line_end > _HEADERS:
            return ("refuse", -1)
        parse_head(data[:end], 100)
    except HttpError:
        return ("refuse", -1)
    return ("accept", end)


def _trickled(data: bytes, cuts: list[int]) -> tuple[str, int]:
    """Feed `data` growing packet by packet to one scanner, as a connection does."""
    scanner = HeadScanner(_LINE, _HEADERS)
    verdict = ("wait", -1)
    for cut in [*sorted(set(cuts)), len(data)]:
        verdict = _verdict(scanner, data[:cut])
        if verdict[0] != "wait":
            return verdict
    return verdict


_unterminated = st.lists(
    st.sampled_from([*SPECIAL, b"GET / HTTP/1.1", b"Host: a", b"x" * 150]), max_size=12
).map(b"".join)


@settings(max_examples=400, deadline=None)
@given(st.one_of(heads, _unterminated), st.lists(st.integers(0, 20_000), max_size=30))
def test_splitting_never_changes_the_verdict(data: bytes, cuts: list[int]) -> None:
    data = data.lstrip(b"\r\n")  # stray CRLFs are skipped by the protocol, not the scanner
    cuts = [c % (len(data) + 1) for c in cuts]
    whole = _verdict(HeadScanner(_LINE, _HEADERS), data)
    assert _trickled(data, cuts) == whole


@given(st.integers(1, 40), st.integers(0, 3))
def test_the_final_crlfcrlf_is_found_whatever_way_it_is_split(size: int, split: int) -> None:
    head = b"GET / HTTP/1.1\r\nHost: " + b"h" * size
    data = head + b"\r\n\r\n"
    scanner = HeadScanner(_LINE, _HEADERS)
    assert scanner.scan(data[: len(head) + split], 0) == -1
    assert scanner.scan(data, 0) == len(head)


def test_byte_by_byte_head_is_examined_a_bounded_number_of_times_per_byte() -> None:
    head = b"GET / HTTP/1.1\r\n" + b"".join(b"X-%04d: %s\r\n" % (i, b"v" * 40) for i in range(300))
    data = head + b"\r\n"
    scanner = HeadScanner(8192, 1 << 20)
    buf = bytearray()  # grown in place, as a connection's buffer is
    for byte in data[:-1]:
        buf.append(byte)
        assert scanner.scan(buf, 0) == -1
    buf.append(data[-1])
    assert scanner.scan(buf, 0) == len(head) - 2
    # Each call re-reads at most the 3 bytes a CRLFCRLF can straddle; rescanning from the
    # start, as before, would examine len(data) ** 2 / 2 = 120M bytes here.
    assert scanner.examined <= 4 * len(data)


def test_a_refusal_comes_as_soon_as_a_head_can_no_longer_be_valid() -> None:
    scanner = HeadScanner(10, 20)
    assert scanner.scan(b"GET /abcde", 0) == -1  # the CRLF may still come: 10 bytes is ok
    with pytest.raises(HttpError) as refused:
        scanner.scan(b"GET /abcdefg", 0)
    assert refused.value.status == 414


def test_trickled_head_on_a_real_connection_is_examined_once(serve: Serve) -> None:
    """The connection keeps one scanner across packets: 15 KB sent byte by byte cost a
    bounded multiple of 15 KB of scanning, not its square."""
    t = serve(header_timeout=30)
    head = b"GET / HTTP/1.1\r\nHost: a\r\n" + b"X-Drip: " + b"d" * 15_000
    with socket.create_connection(("127.0.0.1", t.port), timeout=5) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(head)):
            sock.sendall(head[i : i + 1])

        def scanner() -> HeadScanner | None:
            conns = list(t.server.connections)
            return conns[0]._scanner if len(conns) == 1 else None

        def received_all() -> bool:
            s = scanner()
            return s is not None and s.scanned == len(head)

        wait_until(received_all, timeout=10, what="the server to receive the whole head")
        s = scanner()
        assert s is not None and s.examined <= 4 * len(head)
        sock.sendall(b"\r\n\r\n")
        reply = sock.recv(100)
    assert reply.startswith(b"HTTP/1.1 200 ")
