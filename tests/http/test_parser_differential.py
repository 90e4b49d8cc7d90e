"""Differential fuzzing: our head parser against llhttp (httptools), the parser of Node.js.

The same bytes go to both; both must accept or both refuse, and an accepted head must
come out the same: method, target, version, header names and values, body length and
the keep-alive decision. Where we refuse what llhttp accepts, the difference must be one
of the narrow classes of OURS_STRICTER, each with its RFC reason; any other difference
fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field

import httptools
import pytest
from hypothesis import example, given, settings

from movierec.http.parser import HeadScanner, HttpError, connection_tokens, content_length
from movierec.http.parser import parse_head as parse_our_head
from tests.support.http_heads import heads

# Large enough that the size limits (tested elsewhere) never decide a verdict here,
# except the body limit, which OURS_STRICTER names.
_BIG = 1 << 20
_MAX_BODY = 1 << 16
# RFC 3986 3.2.2 and 3.2.3, restated here so the Host class does not trust our own regex.
_RFC3986_HOST = re.compile(
    rb"(\[[0-9A-Za-z:.\-_~!$&'()*+,;=]+\]|[0-9A-Za-z\-._~!$&'()*+,;=%]*)(:[0-9]*)?"
)


@dataclass
class Parsed:
    """What a parser made of a head: None fields mean it refused."""

    accepted: bool
    reason: str = ""
    method: bytes = b""
    target: bytes = b""
    path: bytes = b""
    query: bytes = b""
    version: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    raw_headers: list[tuple[bytes, bytes]] = field(default_factory=list)
    body_length: int = 0
    keep_alive: bool = False


def ours(data: bytes) -> Parsed:
    """Our verdict, taken as the server takes it (protocol.py): skip stray CRLFs, find the
    head, parse it, refuse Transfer-Encoding, read Content-Length, apply the body limit."""
    pos = 0
    while data.startswith(b"\r\n", pos):
        pos += 2
    try:
        end = HeadScanner(_BIG, _BIG).scan(data, pos)
        assert end != -1, "heads are terminated"
        head = parse_our_head(data[pos:end], _BIG)
        if "transfer-encoding" in head.headers:
            raise HttpError(501, "Transfer-Encoding is not supported")
        size = content_length(head.headers)
        if size > _MAX_BODY:
            raise HttpError(413, "request body too large")
    except HttpError as err:
        return Parsed(False, f"{err.status} {err.reason}")
    return Parsed(
        True,
        method=head.method.encode(),
        target=head.target.encode(),
        path=head.path.encode(),
        query=head.query.encode(),
        version=head.version.removeprefix("HTTP/"),
        headers=head.headers,
        body_length=size,
        keep_alive=head.keep_alive,
    )


class _Recorder:
    def __init__(self) -> None:
        self.parser: httptools.HttpRequestParser | None = None
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.complete: tuple[bool, str] | None = None
        self.body = 0
        self.done = False

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        # Asked here: llhttp forgets the connection flags once the message is complete.
        assert self.parser is not None
        self.complete = (self.parser.should_keep_alive(), self.parser.get_http_version())

    def on_body(self, body: bytes) -> None:
        self.body += len(body)

    def on_message_complete(self) -> None:
        self.done = True


def llhttp(data: bytes, body_length: int) -> Parsed:
    """llhttp's verdict; an accepted head is then given `body_length` bytes of body, which
    must complete the message exactly."""
    rec = _Recorder()
    parser = httptools.HttpRequestParser(rec)
    rec.parser = parser
    upgraded = False
    try:
        parser.feed_data(data)
    except httptools.HttpParserUpgrade:
        upgraded = True  # CONNECT or Upgrade: llhttp stops after a complete head
    except httptools.HttpParserError as err:
        return Parsed(False, f"{type(err).__name__}: {err}")
    if rec.complete is None:
        return Parsed(False, "head never completed")
    keep_alive, version = rec.complete
    # RFC 9110 5.5: leading and trailing whitespace is not part of a field value.
    headers: dict[str, str] = {}
    for name, value in rec.headers:
        key, text = name.decode("ascii").lower(), value.strip(b" \t").decode("latin-1")
        headers[key] = headers[key] + ", " + text if key in headers else text
    parsed = Parsed(
        True,
        method=parser.get_method(),
        target=rec.url,
        version=version,
        headers=headers,
        raw_headers=rec.headers,
        keep_alive=keep_alive,
    )
    if not upgraded and body_length <= _MAX_BODY:
        if body_length and rec.done:
            parsed.body_length = -1  # complete without its body: it saw no Content-Length
        else:
            try:
                parser.feed_data(b"x" * body_length)
            except httptools.HttpParserError as err:
                return Parsed(False, f"in the body: {type(err).__name__}: {err}")
            parsed.body_length = rec.body if rec.done else -1
    return parsed


def _hosts(theirs: Parsed) -> list[bytes]:
    return [v.strip(b" \t") for n, v in theirs.raw_headers if n.lower() == b"host"]


def _no_host_on_11(data: bytes, theirs: Parsed) -> bool:
    return theirs.version == "1.1" and not _hosts(theirs)


def _several_or_invalid_hosts(data: bytes, theirs: Parsed) -> bool:
    hosts = _hosts(theirs)
    return len(hosts) > 1 or (len(hosts) == 1 and not _RFC3986_HOST.fullmatch(hosts[0]))


def _not_http1(data: bytes, theirs: Parsed) -> bool:
    protocol = data.lstrip(b"\r\n").split(b"\r\n", 1)[0].rsplit(b" ", 1)[-1]
    return theirs.version not in ("1.0", "1.1") or not protocol.startswith(b"HTTP/")


def _transfer_encoding(data: bytes, theirs: Parsed) -> bool:
    return "transfer-encoding" in theirs.headers


def _not_origin_target(data: bytes, theirs: Parsed) -> bool:
    target = theirs.target
    if target == b"*":
        return theirs.method != b"OPTIONS"
    if target.startswith(b"/"):
        return False
    # http(s) absolute-form with an authority, not followed directly by a fragment.
    return re.match(rb"(?i)https?://[^/?#]+(?:[/?]|$)", target) is None


def _extra_spaces(data: bytes, theirs: Parsed) -> bool:
    return b"  " in data.lstrip(b"\r\n").split(b"\r\n", 1)[0]


def _bare_cr_or_lf_before_request_line(data: bytes, theirs: Parsed) -> bool:
    pos = 0
    while data.startswith(b"\r\n", pos):
        pos += 2
    return data.startswith((b"\r", b"\n"), pos)


def _body_over_limit(data: bytes, theirs: Parsed) -> bool:
    raw = theirs.headers.get("content-length", "")
    return raw.isdigit() and int(raw) > _MAX_BODY


# Classes of heads llhttp accepts and we refuse on purpose: (name, RFC reason, test).
# Each test looks at llhttp's reading of the head, so a class cannot excuse anything else.
OURS_STRICTER: list[tuple[str, str, Callable[[bytes, Parsed], bool]]] = [
    (
        "HTTP/1.1 without Host",
        "RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request lacking Host",
        _no_host_on_11,
    ),
    (
        "more than one Host, or an invalid Host value",
        "RFC 9112 3.2: MUST answer 400 to several Host lines or an invalid Host value",
        _several_or_invalid_hosts,
    ),
    (
        "a protocol other than HTTP/1.0 and HTTP/1.1 (llhttp takes HTTP/0.9, HTTP/2.0, "
        "RTSP/ and ICE/)",
        "RFC 9110 15.6.6: 505 for a major version we do not speak; HTTP/2 has no text form; "
        "RFC 9112 2.3: HTTP-name is the literal HTTP",
        _not_http1,
    ),
    (
        "Transfer-Encoding",
        "RFC 9112 6.1: a server that does not implement a transfer coding answers 501; no "
        "endpoint takes a body, and TE beside CL is the classic smuggling vector",
        _transfer_encoding,
    ),
    (
        "a target that is neither origin-form nor http(s) absolute-form (authority-form, "
        "asterisk-form other than OPTIONS *, other schemes, a fragment after the authority)",
        "RFC 9112 3.2.3-3.2.4: authority-form is for CONNECT to a proxy and asterisk-form "
        "for OPTIONS only; we are an origin server for http(s)",
        _not_origin_target,
    ),
    (
        "more than one space between the parts of the request line",
        "RFC 9112 3: the request line is method SP target SP version, single spaces; "
        "3 allows, not requires, lenient parsing",
        _extra_spaces,
    ),
    (
        "a bare CR or LF before the request line",
        "RFC 9112 2.2: a server SHOULD ignore empty lines (CRLF) before a request line; "
        "a bare CR or LF is not one, and lines end in CRLF only here",
        _bare_cr_or_lf_before_request_line,
    ),
    (
        "a Content-Length over the body limit",
        "RFC 9110 15.5.14: 413 for content larger than the server is willing to process",
        _body_over_limit,
    ),
]
# Accepted by both, with one decision that differs on purpose.
KEEP_ALIVE_DIFFERS = (
    "HTTP/1.0 with both close and keep-alive",
    "RFC 9112 9.3 checks close first; llhttp looks only for keep-alive on 1.0",
)


def stricter_class(data: bytes, theirs: Parsed) -> str | None:
    for name, _reason, applies in OURS_STRICTER:
        if applies(data, theirs):
            return name
    return None


def check_agreement(data: bytes) -> None:
    mine = ours(data)
    theirs = llhttp(data, mine.body_length if mine.accepted else 0)
    if not theirs.accepted:
        assert not mine.accepted, f"llhttp refuses ({theirs.reason}), we accept: {data!r}"
        return
    if not mine.accepted:
        assert stricter_class(data, theirs) is not None, (
            f"we refuse ({mine.reason}) what llhttp accepts, in no named class: {data!r}"
        )
        return
    assert mine.method == theirs.method
    if theirs.target.startswith(b"/") or theirs.target == b"*":
        assert mine.target == theirs.target
    else:  # absolute-form: we keep the path and query; compare with llhttp's URL split
        try:
            url = httptools.parse_url(theirs.target)
        except httptools.HttpParserInvalidURLError:
            url = None  # llhttp's URL splitter refuses what its request parser accepted
        if url is not None:
            assert mine.path == (url.path or b"/")
            assert mine.query == (url.query or b"")
    assert mine.version == theirs.version
    assert mine.headers == theirs.headers
    assert mine.body_length == theirs.body_length
    tokens = connection_tokens(mine.headers.get("connection", ""))
    if mine.version == "1.0" and {"close", "keep-alive"} <= tokens:
        assert not mine.keep_alive and theirs.keep_alive, KEEP_ALIVE_DIFFERS
    else:
        assert mine.keep_alive == theirs.keep_alive


@settings(max_examples=600, deadline=None)  # 1,500 took 27 s of the CI budget
@given(heads)
@example(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
@example(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n")
@example(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n")
@example(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: closed\r\n\r\n")
@example(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: foo, CLOSE\r\n\r\n")
@example(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n")
@example(b"GET http://h?q=1 HTTP/1.1\r\nHost: h\r\n\r\n")
@example(b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n")
def test_same_verdict_as_llhttp(data: bytes) -> None:
    check_agreement(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 without Host"),
        (b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "more than one Host"),
        (b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", "more than one Host"),
        (b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", "a protocol other than"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", "Transfer"),
        (b"GET * HTTP/1.1\r\nHost: a\r\n\r\n", "a target that is neither"),
        (b"GET ftp://h/x HTTP/1.1\r\nHost: a\r\n\r\n", "a target that is neither"),
        (b"CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n", "a target that is neither"),
        (b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "more than one space"),
        (b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "a bare CR or LF before"),
        (b"\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", "a bare CR or LF before"),
        (b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999\r\n\r\n", "a Content-Length"),
    ],
)
def test_each_stricter_class_is_real(data: bytes, expected: str) -> None:
    """Every class on the allow-list is a head llhttp accepts and we refuse: an entry that
    no longer differs must be removed rather than linger as a silent excuse."""
    theirs = llhttp(data, 0)
    assert theirs.accepted
    assert not ours(data).accepted
    name = stricter_class(data, theirs)
    assert name is not None and name.startswith(expected)


@pytest.mark.parametrize(
    "data",
    [
        b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\nHost: a\n\n",
        b"GET / HTTP/1.1\r\nHost: a\rb\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: a\x00\r\n\r\n",
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n",
        b"FOO / HTTP/1.1\r\nHost: a\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +1\r\n\r\n",
    ],
)
def test_both_refuse_the_classic_ambiguities(data: bytes) -> None:
    assert not llhttp(data, 0).accepted
    assert not ours(data).accepted
