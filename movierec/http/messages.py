"""Request, response and limit types of the HTTP server core, and response serialisation.

Everything here sits on the per-request hot path, so the classes use __slots__, header
bytes are cached, and a response is rendered with one bytes join.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from email.utils import formatdate
from http import HTTPStatus
from typing import Any

import orjson

TEXT_PLAIN = "text/plain; charset=utf-8"
APPLICATION_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep one hostile or broken client from hurting the others.

    docs/serving.md lists what a client exceeding each one gets.
    """

    # Bytes of "METHOD target HTTP/x.y" before the CRLF; longer answers 414.
    max_request_line: int = 8192
    # Bytes of all header lines together; more answers 431.
    max_header_bytes: int = 16384
    # Number of header lines; more answers 431.
    max_headers: int = 100
    # Largest request body (Content-Length) read into memory; more answers 413. With 0 no
    # body is taken at all: Content-Length > 0 or any Transfer-Encoding answers 413 right
    # after the head, and the body is never buffered.
    max_body: int = 1 << 20
    # Seconds a keep-alive connection may sit without a request.
    keepalive_timeout: float = 15.0
    # Seconds from the first byte of a request until its head (and body) is complete;
    # trickling bytes does not extend it, which is what defeats slowloris.
    header_timeout: float = 10.0
    # Seconds our answers may stay stuck (the client not reading): the clock starts when
    # output first backs up and restarts only once it has all been handed to the socket,
    # so reading a trickle does not extend it.
    write_timeout: float = 10.0
    # After a fatal error we half-close and keep draining input this long, so the client
    # reads our error answer instead of a TCP reset.
    linger_timeout: float = 1.0
    # Open connections at once. At the cap a newcomer displaces the connection idle the
    # longest; when none is idle it gets a 503 and is closed.
    max_connections: int = 10000
    # At the cap, one peer address may hold at most this share of max_connections: beyond
    # it, it can only displace its own idle connections (else 503), and an address above
    # it yields its connections to newcomers from other addresses.
    max_address_share: float = 0.25
    # Requests of one connection served in one turn of the event loop; a pipelined rest
    # waits for the next turn, so the other connections are served in between.
    max_requests_per_turn: int = 16
    # Deferred requests (of all connections together) served in one loop iteration. The
    # event loop accepts one new connection per iteration (libuv does not accept in a
    # loop), so an iteration must stay short even when hundreds of connections pipeline:
    # 200 of them at 16 requests each made every iteration ~80 ms, and a newcomer behind
    # 200 queued connections waited seconds to be accepted.
    max_deferred_per_iteration: int = 64
    # Connections accepted in one loop iteration (the rest at the next). libuv accepts
    # one, so under a flood whose connections make every iteration long, newcomers (a site
    # reconnecting after a timeout) waited an iteration each and timed out in turn.
    max_accepts_per_iteration: int = 128
    # Bytes of answers the transport may hold for one connection before that connection
    # stops being read (its answers are not being read either).
    write_buffer_high: int = 16 * 1024
    # The kernel's send buffer per connection (SO_SNDBUF; 0 keeps the OS default, which
    # on loopback grows to megabytes: that many unread answers before backpressure).
    send_buffer: int = 64 * 1024
    # Bytes of request input plus backed-up answers held across all connections; beyond
    # it the connections holding the most are dropped until a quarter of it is free.
    max_buffered: int = 128 << 20

    def __post_init__(self) -> None:
        if not 0.0 < self.max_address_share <= 1.0:
            raise ValueError(
                f"max_address_share must be within (0, 1], not {self.max_address_share}"
            )
        for name in (
            "max_connections",
            "max_requests_per_turn",
            "max_deferred_per_iteration",
            "max_accepts_per_iteration",
            "write_buffer_high",
            "max_buffered",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, not {getattr(self, name)}")
        if self.max_body < 0 or self.send_buffer < 0:
            raise ValueError("max_body and send_buffer must not be negative")


class Request:
    """One parsed request. `path` is the raw target up to '?', not percent-decoded."""

    __slots__ = ("body", "client", "headers", "method", "path", "query", "target", "version")

    def __init__(
        self,
        method: str,
        target: str,
        path: str,
        query: str,
        version: str,
        headers: dict[str, str],
        body: bytes = b"",
        client: tuple[Any, ...] | None = None,
    ) -> None:
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        # Lower-cased names; repeated headers are joined with ", " as RFC 9110 allows.
        self.headers = headers
        self.body = body
        self.client = client

    def __repr__(self) -> str:
        return f"Request({self.method} {self.target} {self.version})"


class Response:
    """What a handler returns. A Response may be reused across requests: it is never mutated."""

    __slots__ = ("body", "close", "content_type", "headers", "status")

    def __init__(
        self,
        status: int = 200,
        body: bytes = b"",
        content_type: str = TEXT_PLAIN,
        headers: list[tuple[str, str]] | None = None,
        close: bool = False,
    ) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers
        # Ask the server to close the connection after this answer.
        self.close = close

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode(), TEXT_PLAIN)

    @classmethod
    def json(cls, obj: Any, status: int = 200) -> Response:
        return cls(status, orjson.dumps(obj), APPLICATION_JSON)

    def __repr__(self) -> str:
        return f"Response({self.status}, {len(self.body)} bytes, {self.content_type!r})"


class CloseConnection(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raised by a handler to drop the connection without answering (a simulated hang/crash)."""


_STATUS_LINES: dict[int, bytes] = {}
_CONTENT_TYPES: dict[str, bytes] = {}
_date_second = -1
_date_header = b""


def status_line(status: int) -> bytes:
    line = _STATUS_LINES.get(status)
    if line is None:
        if not 100 <= status <= 999:
            raise ValueError(f"invalid HTTP status {status}")
        try:
            phrase = HTTPStatus(status).phrase
        except ValueError:
            phrase = "Unknown"
        line = f"HTTP/1.1 {status} {phrase}\r\n".encode("ascii")
        _STATUS_LINES[status] = line
    return line


def _content_type_line(content_type: str) -> bytes:
    line = _CONTENT_TYPES.get(content_type)
    if line is None:
        _check_header("Content-Type", content_type)
        line = f"Content-Type: {content_type}\r\n".encode("latin-1")
        if len(_CONTENT_TYPES) < 256:
            _CONTENT_TYPES[content_type] = line
    return line


def _check_header(name: str, value: str) -> None:
    # A CR or LF from a handler would let request data split our response (header injection).
    if "\r" in name or "\n" in name or ":" in name or "\r" in value or "\n" in value:
        raise ValueError(f"invalid response header {name!r}")


def date_and_server() -> bytes:
    """Date and Server header lines; Date is formatted at most once a second."""
    global _date_second, _date_header
    now = time.time()
    second = int(now)
    if second != _date_second:
        # Assign the bytes before the second so a concurrent reader never pairs a new
        # second with an old string for long; either value is a valid Date anyway.
        _date_header = f"Date: {formatdate(now, usegmt=True)}\r\nServer: movierec\r\n".encode()
        _date_second = second
    return _date_header


# (status, content type) -> (the Date lines it was built with, status + Date + type lines):
# the start of an answer changes once a second, so it is joined once a second, not per answer.
_STARTS: dict[tuple[int, str], tuple[bytes, bytes]] = {}


def render(response: Response, head_only: bool, connection: bytes) -> bytes:
    """Serialise a response; `connection` is a ready "Connection: ..." line or b""."""
    body = response.body
    date = date_and_server()
    key = (response.status, response.content_type)
    start = _STARTS.get(key)
    if start is None or start[0] is not date:
        start = (date, status_line(key[0]) + date + _content_type_line(key[1]))
        if len(_STARTS) >= 256:
            _STARTS.clear()
        _STARTS[key] = start
    content = b"" if head_only else body
    if not response.headers:
        return b"%sContent-Length: %d\r\n%s\r\n%s" % (start[1], len(body), connection, content)
    parts = [start[1], b"Content-Length: %d\r\n" % len(body), connection]
    for name, value in response.headers:
        _check_header(name, value)
        parts.append(f"{name}: {value}\r\n".encode("latin-1"))
    parts.append(b"\r\n")
    parts.append(content)
    return b"".join(parts)


def error_bytes(status: int, reason: str, close: bool = True) -> bytes:
    """A complete plain-text error answer, closing the connection by default."""
    response = Response(status, (reason + "\n").encode("utf-8", "replace"))
    return render(response, False, b"Connection: close\r\n" if close else b"")
