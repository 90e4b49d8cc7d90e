"""The fast parser's numba kernel: one chunk of joined lines into the batch's columns.

`parse_chunk` follows `movierec.logformat.reference.parse_line` step by step (the comments name the
reference step) and writes every column of every row, so the output arrays need no
initialisation. Rows it cannot finish alone are listed in `special` for the Python side:
recommendation and other-kind rows (their Event holds strings) and the rare rows only the
reference itself handles (`SLOW`).

Movie ids are interned into a batch-wide open-addressing table that compares the bytes, so
each distinct id is decoded to a str once per batch rather than once per line.

`parse_chunk` is compiled without numba's reference-counting runtime (`_nrt=False`): with it,
every inlined helper that takes an array paid an atomic incref and decref, which profiled as
a third of the kernel's time. The kernel therefore allocates nothing; the caller passes in
every array it writes.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from movierec.logformat import batch_fields as ff
from movierec.logformat.xxhash import at, xxh64_span

# Reasons the kernel can give, in its own numbering; the caller passes their REASON_CODE
# values in `codes`, so a renumbering of the reference reasons never meets a stale numba cache.
KERNEL_REASONS = (
    "empty",
    "too_long",
    "encoding",
    "control_character",
    "malformed",
    "bad_timestamp",
    "bad_user_id",
    "bad_movie_id",
    "bad_minute",
    "bad_rating",
    "rating_out_of_range",
    "extra_field",
    "bad_service",
    "bad_status",
    "bad_result",
    "bad_latency",
)
(EMPTY, TOO_LONG, ENCODING, CONTROL, MALFORMED, BAD_TIME, BAD_USER, BAD_MOVIE, BAD_MINUTE) = range(
    9
)
(BAD_RATING, OUT_OF_RANGE, EXTRA, BAD_SERVICE, BAD_STATUS, BAD_RESULT, BAD_LATENCY) = range(9, 16)

WATCH, RATE, RECOMMENDATION, OTHER = 0, 1, 2, 3  # reference.Kind
SLOW = -2  # kind of a row left to the reference parser
# Outcomes: a reason number, _ACCEPT + kind, or _TO_PYTHON (kind SLOW).
_ACCEPT = 100
_TO_PYTHON = _ACCEPT + 4

MAX_LINE_BYTES = 16 * 1024  # reference.MAX_LINE_BYTES
_WATCH = np.frombuffer(b"GET /data/m/", dtype=np.uint8)
_RATE = np.frombuffer(b"GET /rate/", dtype=np.uint8)
_REC = np.frombuffer(b"recommendation request ", dtype=np.uint8)
_CREATE = np.frombuffer(b"GET /create_account", dtype=np.uint8)
_MPG = np.frombuffer(b".mpg", dtype=np.uint8)
_MPG_COMMA = np.frombuffer(b".mpg,", dtype=np.uint8)
_STATUS = np.frombuffer(b", status ", dtype=np.uint8)
_RESULT = np.frombuffer(b", result: ", dtype=np.uint8)
_MS = np.frombuffer(b" ms", dtype=np.uint8)
_MS_COMMA = np.frombuffer(b" ms, ", dtype=np.uint8)


@njit(cache=True, nogil=True)
def _watch(buf: np.ndarray, b0: int, e: int) -> tuple[int, int, int, int, np.uint64]:
    """reference._watch: (outcome, minute, movie start, movie end, movie hash)."""
    zero = np.uint64(0)
    if e - b0 < 4 or not ff.starts_with(buf, e - 4, e, _MPG):
        bad = EXTRA if ff.find_bytes(buf, b0, e, _MPG_COMMA) >= 0 else MALFORMED
        return bad, 0, 0, 0, zero
    slash = ff.rfind_byte(buf, b0, e - 4, 47)  # '/'
    if slash < 0:
        return MALFORMED, 0, 0, 0, zero
    if not ff.movie_id(buf, b0, slash):
        return BAD_MOVIE, 0, 0, 0, zero
    minute = ff.minute_value(buf, slash + 1, e - 4)
    if minute < 0:
        return BAD_MINUTE, 0, 0, 0, zero
    return _ACCEPT + WATCH, minute, b0, slash, ff.span_hash(buf, b0, slash)


@njit(cache=True, nogil=True)
def _rate(buf: np.ndarray, b0: int, e: int, scale: int) -> tuple[int, int, int, int, np.uint64]:
    """reference._rate: (outcome, stars, movie start, movie end, movie hash)."""
    zero = np.uint64(0)
    equals = ff.rfind_byte(buf, b0, e, 61)  # '='
    if equals < 0:
        return MALFORMED, 0, 0, 0, zero
    if not ff.movie_id(buf, b0, equals):
        return BAD_MOVIE, 0, 0, 0, zero
    if ff.find_byte(buf, equals + 1, e, 44) >= 0:
        return EXTRA, 0, 0, 0, zero
    matched, stars = ff.rating_value(buf, equals + 1, e)
    if not matched:
        return BAD_RATING, 0, 0, 0, zero
    if not 1 <= stars <= scale:
        return OUT_OF_RANGE, 0, 0, 0, zero
    return _ACCEPT + RATE, stars, b0, equals, ff.span_hash(buf, b0, equals)


@njit(cache=True, nogil=True)
def _recommendation(
    buf: np.ndarray, b0: int, e: int, ascii_only: bool
) -> tuple[int, int, int, int, int, int]:
    """reference._recommendation: (outcome, status, latency, service end, result start, result
    end); the service starts at b0."""
    status_at = ff.find_bytes(buf, b0, e, _STATUS)
    if status_at < 0:
        return MALFORMED, 0, 0, 0, 0, 0
    if not ff.is_service(buf, b0, status_at):
        return BAD_SERVICE, 0, 0, 0, 0, 0
    after = status_at + _STATUS.size
    at2 = ff.find_bytes(buf, after, e, _RESULT)
    if at2 < 0:
        return MALFORMED, 0, 0, 0, 0, 0
    if ff.find_byte(buf, after, at2, 44) >= 0:
        return EXTRA, 0, 0, 0, 0, 0
    status = ff.status_value(buf, after, at2)
    if status < 0:
        return BAD_STATUS, 0, 0, 0, 0, 0
    t0 = at2 + _RESULT.size
    if e - t0 < 3 or not ff.starts_with(buf, e - 3, e, _MS):
        return (EXTRA if ff.find_bytes(buf, t0, e, _MS_COMMA) >= 0 else MALFORMED), 0, 0, 0, 0, 0
    last = -1
    for p in range(e - 5, t0 - 1, -1):  # tail.rfind(", ", 0, len(tail) - 3)
        if at(buf, p) == 44 and at(buf, p + 1) == 32:
            last = p
            break
    if last < 0:
        return MALFORMED, 0, 0, 0, 0, 0
    latency = ff.latency_value(buf, last + 2, e - 3)
    if latency < 0:
        return BAD_LATENCY, 0, 0, 0, 0, 0
    if status == 200 and last > t0:
        if not ascii_only:
            # str.strip() also removes Unicode spaces; only the reference knows them all.
            for p in range(t0, last):
                if at(buf, p) >= 0x80:
                    return _TO_PYTHON, 0, 0, 0, 0, 0
        if not ff.result_ids(buf, t0, last):
            return BAD_RESULT, 0, 0, 0, 0, 0
    return _ACCEPT + RECOMMENDATION, status, latency, status_at, t0, last


@njit(cache=True, nogil=True)
def _line(
    buf: np.ndarray, s: int, e: int, scale: int
) -> tuple[int, int, int, int, int, int, int, int, int, np.uint64]:
    """reference.parse_line on buf[s:e]: (outcome, time, user, value, latency, x0, x1, x2, x3,
    movie hash). Watch/rate: the movie is buf[x0:x1]. Recommendation: the service is
    buf[x0:x1], the result buf[x2:x3]."""
    zero = np.uint64(0)
    n = e - s
    if n == 0:
        return EMPTY, 0, 0, 0, 0, 0, 0, 0, 0, zero
    if n > MAX_LINE_BYTES:
        return TOO_LONG, 0, 0, 0, 0, 0, 0, 0, 0, zero
    text, ascii_only = ff.scan_line(buf, s, e)
    if text == ff.TEXT_NOT_UTF8:
        return ENCODING, 0, 0, 0, 0, 0, 0, 0, 0, zero
    if text == ff.TEXT_CONTROL:
        return CONTROL, 0, 0, 0, 0, 0, 0, 0, 0, zero
    # Most lines start with a 19-byte time and a comma: if those 19 bytes are a valid time
    # they hold no comma, so the first comma is at 19 without searching for it.
    first = s + 19
    bad_time = ff.TIME_BAD
    t = 0
    if n > 19 and at(buf, first) == 44:
        bad_time, t = ff.parse_time(buf, s, first)
    if bad_time != 0:
        first = ff.find_byte(buf, s, e, 44)
        if first < 0:
            return MALFORMED, 0, 0, 0, 0, 0, 0, 0, 0, zero
        bad_time, t = ff.parse_time(buf, s, first)
    if bad_time == ff.TIME_BAD:
        return BAD_TIME, 0, 0, 0, 0, 0, 0, 0, 0, zero
    if bad_time == ff.TIME_OUT_OF_RANGE:
        return _TO_PYTHON, 0, 0, 0, 0, 0, 0, 0, 0, zero
    second = ff.find_byte(buf, first + 1, e, 44)
    if second < 0:
        return MALFORMED, 0, 0, 0, 0, 0, 0, 0, 0, zero
    u = ff.parse_user(buf, first + 1, second)
    if u < 0:
        return BAD_USER, 0, 0, 0, 0, 0, 0, 0, 0, zero
    r = second + 1
    if ff.starts_with(buf, r, e, _WATCH):
        outcome, v, x0, x1, h = _watch(buf, r + _WATCH.size, e)
        return outcome, t, u, v, 0, x0, x1, 0, 0, h
    if ff.starts_with(buf, r, e, _RATE):
        outcome, v, x0, x1, h = _rate(buf, r + _RATE.size, e, scale)
        return outcome, t, u, v, 0, x0, x1, 0, 0, h
    if ff.starts_with(buf, r, e, _REC):
        b0 = r + _REC.size
        outcome, v, lat, x1, x2, x3 = _recommendation(buf, b0, e, ascii_only)
        return outcome, t, u, v, lat, b0, x1, x2, x3, zero
    if e - r == _CREATE.size and ff.starts_with(buf, r, e, _CREATE):  # rest in reference._OTHER
        return _ACCEPT + OTHER, t, u, 0, 0, 0, 0, 0, 0, zero
    return MALFORMED, 0, 0, 0, 0, 0, 0, 0, 0, zero


@njit(cache=True, nogil=True, inline="always")
def _lookup(
    buf: np.ndarray,
    a: int,
    b: int,
    h: np.uint64,
    slots: np.ndarray,
    mhash: np.ndarray,
    moff: np.ndarray,
    arena: np.ndarray,
) -> int:
    """Index of the movie id buf[a:b] in the interning table, or -1 when not yet there.

    Read-only on purpose: with the insertion inlined into the line loop, the whole loop
    measured markedly slower, so new ids are inserted after the loop (`_insert`)."""
    mask = slots.size - 1
    n = b - a
    i = np.int64(h & np.uint64(mask))
    while True:
        d = slots[i]
        if d < 0:
            return -1
        if mhash[d] == h and moff[d + 1] - moff[d] == n:
            o = moff[d]
            k = 0
            while k < n and at(arena, o + k) == at(buf, a + k):
                k += 1
            if k == n:
                return d
        i = (i + 1) & mask


@njit(cache=True, nogil=True)
def _insert(
    buf: np.ndarray,
    pending: np.ndarray,
    hashes: np.ndarray,
    movie: np.ndarray,
    table: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    count: int,
) -> int:
    """Intern the movie ids of the pending rows (row, start, end); returns the new count.
    The caller reserved room for every line of the chunk, so the table never fills up."""
    slots, mhash, moff, arena = table
    mask = slots.size - 1
    for p in range(pending.shape[0]):
        row, a, b = pending[p, 0], pending[p, 1], pending[p, 2]
        h = hashes[p]
        d = _lookup(buf, a, b, h, slots, mhash, moff, arena)
        if d < 0:
            i = np.int64(h & np.uint64(mask))
            while slots[i] >= 0:
                i = (i + 1) & mask
            d = count
            slots[i] = d
            mhash[d] = h
            o = moff[d]
            for k in range(b - a):  # a slice copy would need NRT, which the caller lacks
                arena[o + k] = buf[a + k]
            moff[d + 1] = o + b - a
            count += 1
        movie[row] = d
    return count


@njit(cache=True, nogil=True)
def rehash(slots: np.ndarray, mhash: np.ndarray, count: int) -> None:
    """Refill a (bigger) slot table with the first count distinct movie ids."""
    slots[:] = -1
    mask = slots.size - 1
    for d in range(count):
        i = np.int64(mhash[d] & np.uint64(mask))
        while slots[i] >= 0:
            i = (i + 1) & mask
        slots[i] = d


@njit(cache=True, nogil=True, _nrt=False)
def parse_chunk(
    buf: np.ndarray,
    lines: int,
    lengths: np.ndarray,
    base: int,
    scale: int,
    codes: np.ndarray,
    out: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    movie: np.ndarray,
    hashes: np.ndarray,
    table: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    count: int,
    special: np.ndarray,
    spans: np.ndarray,
    pending: np.ndarray,
    pending_hash: np.ndarray,
) -> tuple[int, int, bool]:
    """Parse `lines` lines of buf, joined by one separator byte, into rows base.. of the
    columns: by the given lengths, or, when lengths is empty, by splitting on '\\n'.

    Splitting is right only if no line holds a '\\n'; then the pieces found cannot match
    `lines` exactly, and the call returns ok=False without touching the movie table (the
    caller retries with lengths). Measuring lengths in Python costs more than the rest of
    the Python side, and real lines never hold a '\\n'.

    out is (kind, reason, time_ns, user, value, latency_ms); table is the movie interning
    state (slots, hashes, offsets, arena) holding count ids. Rows needing Python are listed
    in special, with their spans (relative to the line) in spans. Returns (number of
    special rows, new distinct movie count, ok)."""
    kind, reason, time_ns, user, value, latency = out
    slots, mhash, moff, arena = table
    nspecial = 0
    npending = 0
    by_length = lengths.size == lines
    size = buf.size
    s = 0
    for i in range(lines):
        if by_length:
            e = s + lengths[i]
        else:
            e = ff.line_end(buf, s, size)
            if e == size and i < lines - 1:
                return 0, count, False
        row = base + i
        hashes[row] = xxh64_span(buf, s, e)
        outcome, t, u, v, lat, x0, x1, x2, x3, h = _line(buf, s, e, scale)
        movie[row] = -1
        if outcome < _ACCEPT:
            kind[row] = -1
            reason[row] = codes[outcome]
            time_ns[row] = 0
            user[row] = 0
            value[row] = 0
            latency[row] = 0
        else:
            k = SLOW if outcome == _TO_PYTHON else outcome - _ACCEPT
            kind[row] = k
            reason[row] = -1
            time_ns[row] = t
            user[row] = u
            value[row] = v
            latency[row] = lat
            if k in (WATCH, RATE):
                d = _lookup(buf, x0, x1, h, slots, mhash, moff, arena)
                movie[row] = d
                if d < 0:
                    pending[npending, 0] = row
                    pending[npending, 1] = x0
                    pending[npending, 2] = x1
                    pending_hash[npending] = h
                    npending += 1
            else:  # recommendation, other, or left to the reference
                special[nspecial] = row
                spans[nspecial, 0] = x0 - s
                spans[nspecial, 1] = x1 - s
                spans[nspecial, 2] = x2 - s
                spans[nspecial, 3] = x3 - s
                nspecial += 1
        s = e + 1
    if not by_length and s != size + 1:
        return 0, count, False
    if npending:
        count = _insert(buf, pending[:npending], pending_hash[:npending], movie, table, count)
    return nspecial, count, True
