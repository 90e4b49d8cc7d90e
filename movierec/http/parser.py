"""Strict HTTP/1.x request-head parsing with bytes operations.

Strict on purpose: anything ambiguous (bare CR/LF, whitespace before a colon, obs-fold,
repeated Content-Length or Host) is the raw material of request smuggling, so it answers
400 rather than being guessed at. tests/http/test_parser_differential.py feeds the same
bytes to llhttp (httptools) and requires the same verdict; the few places where this
parser refuses what llhttp accepts are listed there, each with its RFC reason.
"""

from __future__ import annotations

import re

# RFC 9110 token characters (method and header names).
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A request target is visible ASCII only: no controls, no spaces, no bytes >= 0x80.
_BAD_TARGET = re.compile(rb"[^\x21-\x7e]")
# Controls other than HTAB are forbidden in field values (a bare CR or LF among them).
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Controls that can never appear in a request head, even one still arriving (CR/LF allowed).
_BAD_PARTIAL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
# RFC 9112 3.2: Host = uri-host [ ":" port ], uri-host an IP-literal or a reg-name.
_HOST = re.compile(
    r"(?:\[[0-9A-Za-z\-._~!$&'()*+,;=:]+\]|[0-9A-Za-z\-._~!$&'()*+,;=%]*)(?::[0-9]*)?"
)
# Methods llhttp knows for HTTP (RFC 9110's, WebDAV's, QUERY, ...): they reach the handler,
# which answers 405 to those it does not serve. Any other token is refused with 400, as
# llhttp refuses it, so the two parsers agree on what a request is.
_KNOWN_METHODS = {
    m.encode(): m
    for m in (
        *("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT"),
        *("COPY", "LOCK", "MKCOL", "MOVE", "PROPFIND", "PROPPATCH", "SEARCH", "UNLOCK"),
        *("BIND", "REBIND", "UNBIND", "ACL", "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE"),
        *("M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PURGE", "MKCALENDAR"),
        *("LINK", "UNLINK", "SOURCE", "QUERY"),
    )
}
# Repeats of these are refused outright instead of joined (RFC 9112 3.2 and 6.3).
_SINGLETONS = frozenset(("host", "content-length"))
# Header lines repeat across requests (Host, User-Agent, Accept): cache their parse.
_LINE_CACHE: dict[bytes, tuple[str, str]] = {}
_LINE_CACHE_MAX = 512
_CACHEABLE_LINE = 200
# Host and Connection values repeat too: remember the ones already checked or split.
_GOOD_HOSTS: set[str] = set()
_CONNECTION_TOKENS: dict[str, frozenset[str]] = {}
_SMALL_CACHE_MAX = 256


class HttpError(Exception):
    """A request the server must refuse with `status`; the connection is then closed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Head:
    __slots__ = ("headers", "keep_alive", "method", "path", "query", "target", "version")

    def __init__(
        self,
        method: str,
        target: str,
        path: str,
        query: str,
        version: str,
        headers: dict[str, str],
        keep_alive: bool,
    ) -> None:
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        # Whether the connection may carry another request after this one (RFC 9112 9.3).
        self.keep_alive = keep_alive


class HeadScanner:
    """Follows one request head that arrives in pieces, so that each byte is examined once.

    A head trickled byte by byte used to be searched and validated from its start on every
    packet: quadratic work. The scanner remembers how far it got, relative to the head's
    start, and `scan` continues from there (backing up the few bytes a CRLF or CRLFCRLF
    may straddle). It refuses as soon as what has arrived can never become a head the
    complete-head checks would accept, and never earlier.
    """

    __slots__ = ("_line_end", "_max_header_bytes", "_max_line", "examined", "scanned")

    def __init__(self, max_request_line: int, max_header_bytes: int) -> None:
        self._max_line = max_request_line
        self._max_header_bytes = max_header_bytes
        # Bytes of the head already examined, and the request line's CRLF (-1: not seen);
        # both relative to the head's start.
        self.scanned = 0
        self._line_end = -1
        # Bytes examined over all calls: the measure of work the tests hold linear.
        self.examined = 0

    def scan(self, data: bytes | bytearray, start: int) -> int:
        """The index of the CRLFCRLF ending the head that begins at `start`, or -1 when it
        has not arrived yet; HttpError when the head so far can never become valid."""
        n = len(data)
        done = start + self.scanned
        back = max(start, done - 3)
        end = data.find(b"\r\n\r\n", back)
        if end != -1:
            self.examined += end + 4 - back
            return end
        self.examined += n - back
        line_end = self._line_end
        if line_end < 0:
            found = data.find(b"\r\n", max(start, done - 1))
            if found == -1:
                # The line's CRLF can begin at the last byte at the earliest.
                if n - 1 - start > self._max_line:
                    raise HttpError(414, "request line too long")
            else:
                line_end = self._line_end = found - start
                if line_end > self._max_line:
                    raise HttpError(414, "request line too long")
        # The final CRLFCRLF can begin three bytes before the end at the earliest.
        if line_end >= 0 and n - 3 - start - line_end > self._max_header_bytes:
            raise HttpError(431, "request header block too large")
        if _BAD_PARTIAL.search(data, done):
            raise HttpError(400, "control character in request head")
        # Every LF from `done` on must close a CRLF, one that may begin just before `done`.
        if data.count(b"\n", done) != data.count(b"\r\n", max(start, done - 1)):
            raise HttpError(400, "bare LF in request head")
        self.scanned = n - start
        return -1


# What parse_head_fields returns: method, target, path, query, version, headers, keep_alive.
HeadFields = tuple[str, str, str, str, str, dict[str, str], bool]


def parse_head(head: bytes, max_headers: int) -> Head:
    """Parse a complete head (request line and header lines, without the final CRLFCRLF)."""
    return Head(*parse_head_fields(head, max_headers))


def parse_head_fields(head: bytes, max_headers: int) -> HeadFields:
    """parse_head's fields as a plain tuple: the server's hot path builds no Head."""
    try:
        return _parse(head, max_headers)
    except HttpError:
        # Every part is checked for controls on its own (method, target, version, header
        # names and values), so a bare CR or LF always fails somewhere; it is looked for
        # only then, to name it, and costs a well-formed head nothing.
        if head.count(b"\n") != head.count(b"\r\n") or head.count(b"\r") != head.count(b"\n"):
            raise HttpError(400, "bare CR or LF in request head") from None
        raise


def _parse(head: bytes, max_headers: int) -> HeadFields:
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise HttpError(400, "malformed request line")
    raw_method, raw_target, raw_version = parts

    method = _KNOWN_METHODS.get(raw_method)
    if method is None:
        if not _TOKEN.fullmatch(raw_method):
            raise HttpError(400, "malformed method")
        raise HttpError(400, "unknown method")

    if raw_version == b"HTTP/1.1":
        version = "HTTP/1.1"
    elif raw_version == b"HTTP/1.0":
        version = "HTTP/1.0"
    elif _VERSION.fullmatch(raw_version):
        raise HttpError(505, "HTTP version not supported")
    else:
        raise HttpError(400, "malformed HTTP version")

    if not raw_target or _BAD_TARGET.search(raw_target):
        raise HttpError(400, "malformed request target")
    target = raw_target.decode("ascii")
    if target[0] != "/":
        target = _origin_form(target, method)
    q = target.find("?")
    if q >= 0:
        path, query = target[:q], target[q + 1 :]
    else:
        path, query = target, ""

    if len(lines) - 1 > max_headers:
        raise HttpError(431, "too many request headers")
    headers: dict[str, str] = {}
    cache = _LINE_CACHE
    for line in lines[1:]:
        parsed = cache.get(line)
        if parsed is None:
            parsed = _parse_header_line(line)
            if len(line) <= _CACHEABLE_LINE:
                if len(cache) >= _LINE_CACHE_MAX:
                    cache.clear()
                cache[line] = parsed
        name, value = parsed
        if name in headers:
            if name in _SINGLETONS:
                raise HttpError(400, f"repeated {name} header")
            headers[name] += ", " + value
        else:
            headers[name] = value

    host = headers.get("host")
    if host is None:
        if version == "HTTP/1.1":
            raise HttpError(400, "missing Host header")
    elif host not in _GOOD_HOSTS:
        if not _HOST.fullmatch(host):
            raise HttpError(400, "malformed Host header")
        if len(_GOOD_HOSTS) >= _SMALL_CACHE_MAX:
            _GOOD_HOSTS.clear()
        _GOOD_HOSTS.add(host)

    connection = headers.get("connection")
    if connection is None:
        keep_alive = version == "HTTP/1.1"
    else:
        tokens = connection_tokens(connection)
        # RFC 9112 9.3: "close" wins; otherwise 1.1 persists and 1.0 only when asked.
        keep_alive = "close" not in tokens and (version == "HTTP/1.1" or "keep-alive" in tokens)
    return method, target, path, query, version, headers, keep_alive


def connection_tokens(value: str) -> frozenset[str]:
    """The options of a Connection header: a comma-separated list of case-insensitive
    tokens (RFC 9110 7.6.1), so "closed" or "x-close" are not "close"."""
    tokens = _CONNECTION_TOKENS.get(value)
    if tokens is None:
        tokens = frozenset(t.strip(" \t").lower() for t in value.split(","))
        if len(_CONNECTION_TOKENS) >= _SMALL_CACHE_MAX:
            _CONNECTION_TOKENS.clear()
        _CONNECTION_TOKENS[value] = tokens
    return tokens


def _parse_header_line(line: bytes) -> tuple[str, str]:
    colon = line.find(b":")
    if colon <= 0:
        raise HttpError(400, "malformed header line")
    name = line[:colon]
    # Whitespace before the colon, or a line starting with whitespace (obs-fold), fails here.
    if not _TOKEN.fullmatch(name):
        raise HttpError(400, "malformed header name")
    value = line[colon + 1 :].strip(b" \t")
    if _BAD_VALUE.search(value):
        raise HttpError(400, "control character in header value")
    return name.decode("ascii").lower(), value.decode("latin-1")


def _origin_form(target: str, method: str) -> str:
    """Reduce an absolute-form or asterisk-form target to a path (and query)."""
    if target == "*" and method == "OPTIONS":
        return "*"
    lower = target[:8].lower()
    if lower.startswith(("http://", "https://")):
        rest = target[target.index("//") + 2 :]
        # The authority ends at the first "/", "?" or "#" (RFC 3986 3.2).
        cut = len(rest)
        for mark in "/?#":
            at = rest.find(mark, 0, cut)
            if at >= 0:
                cut = at
        # No authority, or a fragment right after it (llhttp refuses "http://a#f" too).
        if cut == 0 or rest.startswith("#", cut):
            raise HttpError(400, "malformed request target")
        tail = rest[cut:]
        return tail if tail.startswith("/") else "/" + tail
    raise HttpError(400, "malformed request target")


def content_length(headers: dict[str, str]) -> int:
    """The declared body size: 0 when absent, HttpError when not a plain decimal."""
    raw = headers.get("content-length")
    if raw is None:
        return 0
    # int() would accept "+5", " 5", "5_0" and unicode digits: a smuggling vector.
    if not raw.isascii() or not raw.isdigit():
        raise HttpError(400, "malformed Content-Length")
    # Any 19+ digit size is over every limit; skip converting an arbitrarily long number.
    return int(raw) if len(raw) <= 18 else 1 << 62
