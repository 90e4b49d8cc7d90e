"""Hypothesis strategies for HTTP/1.x request heads: valid ones, near misses and the
ambiguities request smuggling is made of (duplicate or odd Content-Length,
Transfer-Encoding, obs-fold, whitespace before a colon, bare CR/LF, NUL, long lines,
odd versions, absolute-form targets). Used by the parser's differential and
incremental-scanning tests."""

from __future__ import annotations

from hypothesis import strategies as st

_METHODS = [b"GET"] * 6 + [
    b"HEAD",
    b"POST",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"PATCH",
    b"TRACE",
    b"CONNECT",
    b"PROPFIND",  # known to llhttp (WebDAV), not to RFC 9110
    b"PURGE",
    b"FOO",
    b"get",
    b"G@T",
    b"GE T",
    b"",
]
_TARGETS = [b"/", b"/recommend/5", b"/a?b=1&c=%20", b"/a#frag", b"/%zz", b"//double"] * 3 + [
    b"*",
    b"http://example.com/a?b=1",
    b"HTTP://Example.com/x",
    b"https://h:8080",
    b"http://h?q=1",
    b"http://h#f",
    b"http:///nohost",
    b"http://user@h/x",
    b"ftp://h/x",
    b"h:443",
    b"relative",
    b"/caf\xc3\xa9",
    b"/a\tb",
    b"/a\x7fb",
    b"",
]
_VERSIONS = [b"HTTP/1.1"] * 8 + [
    b"HTTP/1.0",
    b"HTTP/1.0",
    b"HTTP/0.9",
    b"HTTP/2.0",
    b"HTTP/1.2",
    b"HTTP/3.0",
    b"HTTP/1.10",
    b"http/1.1",
    b"HTTP/1",
    b"HTTP/11",
    b"HTTP/1.1 ",
    b"ICE/1.0",
]
_VALUES: dict[bytes, list[bytes]] = {
    b"Host": [
        *[b"example.com"] * 4,
        *[b"127.0.0.1:8080", b"[::1]:80", b"", b"a b", b"a/b", b"h@x", b"h\xe9", b"h:port"],
    ],
    b"Content-Length": [
        *[b"0", b"3", b"12", b"05", b" 3 ", b"+3", b"-1", b"3,3", b"3, 3", b""],
        *[b"1" * 19, b"0x3", b"3\t", b"\xd9\xa3"],
    ],
    b"Transfer-Encoding": [
        *[b"chunked", b"identity", b"chunked, identity", b"gzip, chunked"],
        *[b" chunked", b"CHUNKED", b"xchunked", b""],
    ],
    b"Connection": [
        *[b"close", b"keep-alive", b"Keep-Alive", b"closed", b"x-close", b"te", b""],
        *[b"foo, close", b"foo,close", b"close, keep-alive", b"keep-alive, close"],
    ],
    b"Expect": [b"100-continue", b"x"],
}
_NAMES = [*_VALUES, b"X-Thing", b"x-thing", b"User-Agent", b"Accept"]
_SEPARATORS = [b": "] * 8 + [b":", b":\t", b":  ", b" : ", b" :", b"\t:"]
_ENDINGS = [b"\r\n"] * 12 + [b"\n", b"\r", b"\r\r\n", b"\n\r"]
# Bytes whose insertion or replacement makes a head ambiguous or invalid.
SPECIAL = [
    b" ",
    b"\t",
    b"\r",
    b"\n",
    b"\r\n",
    b"\r\n ",
    b"\r\n\t",
    b"\x00",
    b"\x01",
    b"\x0b",
    b"\x7f",
    b"\x80",
    b"\xff",
    b":",
    b",",
    b"/",
    b"?",
    b"#",
    b"@",
    b"\r\nContent-Length: 3",
    b"\r\nTransfer-Encoding: chunked",
    b"\r\nHost: other",
]
_VALUE_BYTES = st.binary(max_size=20).map(
    lambda raw: bytes(b if 0x20 <= b <= 0x7E or b >= 0x80 or b == 9 else 0x61 for b in raw)
)
_TOKEN = st.text("abcXYZ-_0123456789!#$%&'*+.^`|~", min_size=1, max_size=12).map(str.encode)


@st.composite
def header_lines(draw: st.DrawFn) -> list[bytes]:
    """Header lines (without line endings); a Host line first most of the time."""
    count = draw(st.integers(0, 6))
    names = [b"Host"] if draw(st.integers(0, 9)) < 8 else []
    names += [draw(st.one_of(st.sampled_from(_NAMES), _TOKEN)) for _ in range(count)]
    lines = []
    for name in names:
        choices = _VALUES.get(name)
        value = draw(st.sampled_from(choices) if choices else _VALUE_BYTES)
        line = name + draw(st.sampled_from(_SEPARATORS)) + value
        if draw(st.integers(0, 19)) == 0:
            line += b"\r\n " + draw(_VALUE_BYTES)  # obs-fold
        lines.append(line)
    if draw(st.integers(0, 19)) == 0:
        lines.append(b"X-Long: " + b"v" * draw(st.integers(1000, 9000)))
    return lines


@st.composite
def request_heads(draw: st.DrawFn) -> bytes:
    """A request head ending in CRLFCRLF, built from parts that are mostly valid."""
    method = draw(st.sampled_from(_METHODS))
    target = draw(st.sampled_from(_TARGETS))
    if draw(st.integers(0, 19)) == 0:
        target = b"/" + b"a" * draw(st.integers(1000, 9000))
    version = draw(st.sampled_from(_VERSIONS))
    spaces = [draw(st.sampled_from([b" "] * 12 + [b"  ", b"\t"])) for _ in range(2)]
    lines = [method + spaces[0] + target + spaces[1] + version, *draw(header_lines())]
    head = b"".join(line + draw(st.sampled_from(_ENDINGS)) for line in lines)
    prefix = draw(st.sampled_from([b""] * 12 + [b"\r\n", b"\n", b"\r\n\r\n", b" "]))
    return prefix + head + b"\r\n"


@st.composite
def mutated_heads(draw: st.DrawFn) -> bytes:
    """A head with a few bytes inserted, deleted or replaced, special bytes preferred."""
    data = bytearray(draw(request_heads()))
    for _ in range(draw(st.integers(1, 3))):
        pos = draw(st.integers(0, len(data)))
        piece = draw(st.one_of(st.sampled_from(SPECIAL), st.binary(min_size=1, max_size=3)))
        op = draw(st.sampled_from(["insert", "delete", "replace"]))
        if op == "insert":
            data[pos:pos] = piece
        elif op == "delete":
            del data[pos : pos + len(piece)]
        else:
            data[pos : pos + len(piece)] = piece
    return bytes(data)


def terminated(data: bytes) -> bytes:
    """`data` cut or completed to exactly one head (after any stray CRLFs, which a server
    skips before a request line), so both parsers give a verdict on the same bytes."""
    start = 0
    while data.startswith(b"\r\n", start):
        start += 2
    if start == len(data):
        data += b"GET / HTTP/1.1\r\nHost: a\r\n"
    end = data.find(b"\r\n\r\n", start)
    if end == -1:
        data += b"\r\n\r\n"
        end = data.find(b"\r\n\r\n", start)
    return data[: end + 4]


heads = st.one_of(request_heads(), mutated_heads()).map(terminated)
