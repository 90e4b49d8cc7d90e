"""Strict HTTP/1.x request-head parsing with bytes operations.

Strict on purpose: anything ambiguous (bare CR/LF, whitespace before a colon, obs-fold,
conflicting Content-Length) is the raw material of request smuggling, so it answers 400
rather than being guessed at.
"""

from __future__ import annotations

import re

# RFC 9110 token characters (method and header names).
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
# A request target is visible ASCII only: no controls, no spaces, no bytes >= 0x80.
_BAD_TARGET = re.compile(rb"[^\x21-\x7e]")
# Controls other than HTAB are forbidden in field values (CR and LF are caught earlier).
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
# Controls that can never appear in a request head, even one still arriving (CR/LF allowed).
_BAD_PARTIAL = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_VERSION = re.compile(rb"HTTP/[0-9]\.[0-9]")
_KNOWN_METHODS = {
    m.encode(): m
    for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "CONNECT")
}
# Repeats of these are refused outright instead of joined.
_SINGLETONS = frozenset(("host", "content-length"))
# Header lines repeat across requests (Host, User-Agent, Accept): cache their parse.
_LINE_CACHE: dict[bytes, tuple[str, str]] = {}
_LINE_CACHE_MAX = 512
_CACHEABLE_LINE = 200


class HttpError(Exception):
    """A request the server must refuse with `status`; the connection is then closed."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class Head:
    __slots__ = ("headers", "method", "path", "query", "target", "version")

    def __init__(
        self, method: str, target: str, path: str, query: str, version: str, headers: dict[str, str]
    ) -> None:
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers


def check_partial(data: bytes | bytearray, start: int, limit_line: int, limit_headers: int) -> None:
    """Refuse an incomplete head early when it can already never become a valid one."""
    line_end = data.find(b"\r\n", start)
    if line_end == -1:
        if len(data) - start > limit_line:
            raise HttpError(414, "request line too long")
    elif line_end - start > limit_line:
        raise HttpError(414, "request line too long")
    elif len(data) - line_end - 2 > limit_headers:
        raise HttpError(431, "request header block too large")
    if _BAD_PARTIAL.search(data, start):
        raise HttpError(400, "control character in request head")
    if data.count(b"\n", start) != data.count(b"\r\n", start):
        raise HttpError(400, "bare LF in request head")


def parse_head(head: bytes, max_headers: int) -> Head:
    """Parse a complete head (request line and header lines, without the final CRLFCRLF)."""
    lines = head.split(b"\r\n")
    if head.count(b"\n") != len(lines) - 1 or head.count(b"\r") != len(lines) - 1:
        raise HttpError(400, "bare CR or LF in request head")
    parts = lines[0].split(b" ")
    if len(parts) != 3:
        raise HttpError(400, "malformed request line")
    raw_method, raw_target, raw_version = parts

    method = _KNOWN_METHODS.get(raw_method)
    if method is None:
        if not _TOKEN.fullmatch(raw_method):
            raise HttpError(400, "malformed method")
        method = raw_method.decode("ascii")

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
                if name == "content-length" and headers[name] == value:
                    continue
                raise HttpError(400, f"repeated {name} header")
            headers[name] += ", " + value
        else:
            headers[name] = value
    return Head(method, target, path, query, version, headers)


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
    """Reduce an absolute-form or asterisk-form target to a path."""
    if target == "*" and method == "OPTIONS":
        return "*"
    lower = target[:8].lower()
    if lower.startswith(("http://", "https://")):
        rest = target[target.index("//") + 2 :]
        slash = rest.find("/")
        return rest[slash:] if slash >= 0 else "/"
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
