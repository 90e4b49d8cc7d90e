"""The head parser's decisions that RFC 9112 fixes: Host on HTTP/1.1, Connection options,
methods and target forms; unit-level, then on a real connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from movierec.http.parser import HttpError, connection_tokens, parse_head
from movierec.http.server import ServerThread

Serve = Callable[..., ServerThread]
Connect = Callable[[int], Any]  # returns conftest.RawConn


def _refusal(head: bytes) -> tuple[int, str]:
    with pytest.raises(HttpError) as refused:
        parse_head(head, 100)
    return refused.value.status, refused.value.reason


def test_http11_without_host_is_400() -> None:
    assert _refusal(b"GET / HTTP/1.1\r\nAccept: */*") == (400, "missing Host header")


def test_http10_needs_no_host() -> None:
    assert parse_head(b"GET / HTTP/1.0", 100).headers == {}


@pytest.mark.parametrize("host", [b"a", b"example.com:8080", b"127.0.0.1", b"[::1]:80", b""])
def test_valid_hosts_are_accepted(host: bytes) -> None:
    # An empty Host is what RFC 9110 7.2 prescribes for a target URI without authority.
    head = parse_head(b"GET / HTTP/1.1\r\nHost: " + host, 100)
    assert head.headers["host"] == host.decode()


@pytest.mark.parametrize("host", [b"a b", b"a/b", b"user@a", b"caf\xc3\xa9", b"[::1"])
def test_invalid_host_value_is_400(host: bytes) -> None:
    assert _refusal(b"GET / HTTP/1.1\r\nHost: " + host) == (400, "malformed Host header")


def test_repeated_host_is_400_even_when_equal() -> None:
    assert _refusal(b"GET / HTTP/1.1\r\nHost: a\r\nHost: a")[0] == 400


def test_repeated_content_length_is_400_even_when_equal() -> None:
    # llhttp refuses these too: a duplicate is where two parsers can disagree on framing.
    head = b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2"
    assert _refusal(head) == (400, "repeated content-length header")


@pytest.mark.parametrize(
    ("value", "tokens"),
    [
        ("close", {"close"}),
        ("Keep-Alive", {"keep-alive"}),
        ("foo, CLOSE ", {"foo", "close"}),
        ("foo,close", {"foo", "close"}),
        ("closed", {"closed"}),
        ("x-close, keep-alives", {"x-close", "keep-alives"}),
        ("\tupgrade ,, te", {"upgrade", "", "te"}),
    ],
)
def test_connection_is_a_list_of_case_insensitive_tokens(value: str, tokens: set[str]) -> None:
    assert connection_tokens(value) == tokens


@pytest.mark.parametrize(
    ("version", "connection", "keep"),
    [
        (b"1.1", None, True),
        (b"1.1", b"close", False),
        (b"1.1", b"Close", False),
        (b"1.1", b"foo, close", False),
        (b"1.1", b"closed", True),
        (b"1.1", b"x-close", True),
        (b"1.1", b"keep-alive, close", False),
        (b"1.0", None, False),
        (b"1.0", b"keep-alive", True),
        (b"1.0", b"Keep-Alive", True),
        (b"1.0", b"keep-alives", False),
        (b"1.0", b"x-keep-alive", False),
        (b"1.0", b"keep-alive, close", False),
    ],
)
def test_keep_alive_follows_rfc9112_9_3(
    version: bytes, connection: bytes | None, keep: bool
) -> None:
    head = b"GET / HTTP/" + version + b"\r\nHost: a"
    if connection is not None:
        head += b"\r\nConnection: " + connection
    assert parse_head(head, 100).keep_alive is keep


@pytest.mark.parametrize("method", [b"FOO", b"get", b"BREW"])
def test_unknown_method_is_400(method: bytes) -> None:
    assert _refusal(method + b" / HTTP/1.1\r\nHost: a") == (400, "unknown method")


@pytest.mark.parametrize(
    ("target", "path", "query"),
    [
        (b"http://h/a?b=1", "/a", "b=1"),
        (b"HTTPS://h:8080", "/", ""),
        (b"http://h?q=1", "/", "q=1"),
        (b"http://user@h/x", "/x", ""),
    ],
)
def test_absolute_form_is_reduced_to_path_and_query(target: bytes, path: str, query: str) -> None:
    head = parse_head(b"GET " + target + b" HTTP/1.1\r\nHost: h", 100)
    assert (head.path, head.query) == (path, query)


@pytest.mark.parametrize("target", [b"http:///x", b"http://h#f", b"ftp://h/x", b"h:443", b"*"])
def test_other_target_forms_are_400(target: bytes) -> None:
    assert _refusal(b"GET " + target + b" HTTP/1.1\r\nHost: h") == (400, "malformed request target")


# --- on a real connection ---------------------------------------------------------------


def test_server_answers_400_to_http11_without_host(serve: Serve, connect: Connect) -> None:
    t = serve()
    c = connect(t.port)
    c.send(b"GET /x HTTP/1.1\r\nAccept: */*\r\n\r\n")
    status, headers, body = c.response()
    assert (status, headers["connection"], body) == (400, "close", b"missing Host header\n")
    assert c.closed()
    assert t.server.stats()["requests"] == 0


def test_connection_closed_is_not_close(serve: Serve, connect: Connect) -> None:
    c = connect(serve().port)
    for i in range(3):
        c.send(b"GET /k%d HTTP/1.1\r\nHost: a\r\nConnection: closed, x-close\r\n\r\n" % i)
        status, headers, body = c.response()
        # Answered on the same connection each time: it was kept open.
        assert (status, body, headers.get("connection")) == (200, b"GET /k%d" % i, None)


def test_close_among_other_tokens_closes(serve: Serve, connect: Connect) -> None:
    c = connect(serve().port)
    c.send(b"GET /a HTTP/1.1\r\nHost: a\r\nConnection: TE, Close\r\n\r\nGET /b HTTP/1.1\r\n\r\n")
    status, headers, body = c.response()
    assert (status, body, headers["connection"]) == (200, b"GET /a", "close")
    assert c.closed()
