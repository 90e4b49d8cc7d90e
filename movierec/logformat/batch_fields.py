"""Field rules of the fast parser (numba), one per rule of the reference parser.

Every function works on a span buf[start:end] of raw bytes and mirrors one reference check
exactly; the comments name the reference expression each one stands for. Spans are byte
offsets: the separators the reference searches for (`,`, `/`, `=`, `, status ` ...) are
ASCII, and in UTF-8 an ASCII byte is always a whole character, so byte and character
positions give the same splits.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from movierec.logformat.xxhash import at, read64

# Outcomes of scan_line.
TEXT_OK = 0
TEXT_CONTROL = 1
TEXT_NOT_UTF8 = 2

# Outcomes of parse_time besides a valid time.
TIME_BAD = 1
TIME_OUT_OF_RANGE = 2  # valid, but beyond int64 nanoseconds: left to the Python path

MAX_MOVIE_ID_LENGTH = 250  # movierec.ids.MAX_MOVIE_ID_LENGTH
MAX_USER_ID = 2**31 - 1  # movierec.ids.MAX_USER_ID

# Bytes allowed in a movie id: [a-z0-9+_.*-] (movierec.ids.MOVIE_ID_PATTERN).
_SLUG = np.zeros(256, dtype=np.bool_)
for _c in b"abcdefghijklmnopqrstuvwxyz0123456789+_.*-":
    _SLUG[_c] = True
# Bytes of a service host: [A-Za-z0-9._-] (reference._SERVICE).
_HOST = np.zeros(256, dtype=np.bool_)
for _c in b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-":
    _HOST[_c] = True
# Multiplier of span_hash (2**64 / golden ratio: spreads the bits of a product).
_MIX = np.uint64(0x9E3779B97F4A7C15)
# Cumulative days before each month (reference._DAYS_BEFORE_MONTH).
_DAYS_BEFORE = np.array([0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334], dtype=np.int64)
# SWAR masks: the high bit of each byte, and addends that set it for bytes >= 0x20 and
# for 0x7F when every byte is below 0x80 (so no carry crosses bytes).
_HIGH = np.uint64(0x8080808080808080)
_ADD_20 = np.uint64(0x6060606060606060)
_ADD_01 = np.uint64(0x0101010101010101)
_NEWLINES = np.uint64(0x0A0A0A0A0A0A0A0A)
# Whole seconds whose nanoseconds (plus any fraction) surely fit in int64.
_MIN_SECONDS = -9_223_372_036
_MAX_SECONDS = 9_223_372_035


@njit(cache=True, nogil=True)
def scan_line(buf: np.ndarray, start: int, end: int) -> tuple[int, bool]:
    """(TEXT_*, whether all ASCII): strict UTF-8 as bytes.decode('utf-8'), then the
    reference's control characters U+0000-U+001F and U+007F-U+009F.

    Not-UTF-8 wins over a control character anywhere, as decoding comes first."""
    control = False
    ascii_only = True
    j = start
    # Eight bytes at a time while they are plain printable ASCII (nearly every byte).
    while j + 8 <= end:
        w = read64(buf, j)
        if (w & _HIGH) | ((w + _ADD_20) & _HIGH ^ _HIGH) | ((w + _ADD_01) & _HIGH):
            break
        j += 8
    while j < end:
        b = at(buf, j)
        if b < 0x80:
            if b < 0x20 or b == 0x7F:
                control = True
            j += 1
            continue
        ascii_only = False
        if b < 0xC2 or b > 0xF4:  # a continuation byte, an overlong lead, or past U+10FFFF
            return TEXT_NOT_UTF8, False
        if b < 0xE0:
            if j + 1 >= end or at(buf, j + 1) < 0x80 or at(buf, j + 1) > 0xBF:
                return TEXT_NOT_UTF8, False
            if b == 0xC2 and at(buf, j + 1) < 0xA0:  # U+0080-U+009F, the C1 controls
                control = True
            j += 2
            continue
        low, high = 0x80, 0xBF
        if b == 0xE0:
            low = 0xA0  # overlong
        elif b == 0xED:
            high = 0x9F  # surrogates
        elif b == 0xF0:
            low = 0x90  # overlong
        elif b == 0xF4:
            high = 0x8F  # past U+10FFFF
        size = 3 if b < 0xF0 else 4
        if j + size > end or at(buf, j + 1) < low or at(buf, j + 1) > high:
            return TEXT_NOT_UTF8, False
        for k in range(j + 2, j + size):
            if at(buf, k) < 0x80 or at(buf, k) > 0xBF:
                return TEXT_NOT_UTF8, False
        j += size
    return (TEXT_CONTROL if control else TEXT_OK), ascii_only


@njit(cache=True, nogil=True)
def line_end(buf: np.ndarray, start: int, end: int) -> int:
    """Position of the first '\\n' in buf[start:end], or end; eight bytes at a time (a
    word has a zero byte after xor with '\\n' iff (x - 0x01..) & ~x & 0x80.. is not 0)."""
    j = start
    while j + 8 <= end:
        x = read64(buf, j) ^ _NEWLINES
        if (x - _ADD_01) & ~x & _HIGH:
            break
        j += 8
    while j < end:
        if at(buf, j) == 10:
            return j
        j += 1
    return end


@njit(cache=True, nogil=True)
def find_byte(buf: np.ndarray, start: int, end: int, byte: int) -> int:
    """First position of byte in buf[start:end], or -1 (str.find of one ASCII char)."""
    for j in range(start, end):
        if at(buf, j) == byte:
            return j
    return -1


@njit(cache=True, nogil=True)
def rfind_byte(buf: np.ndarray, start: int, end: int, byte: int) -> int:
    """Last position of byte in buf[start:end], or -1 (str.rfind of one ASCII char)."""
    for j in range(end - 1, start - 1, -1):
        if at(buf, j) == byte:
            return j
    return -1


@njit(cache=True, nogil=True)
def find_bytes(buf: np.ndarray, start: int, end: int, needle: np.ndarray) -> int:
    """First position of needle wholly inside buf[start:end], or -1 (str.find)."""
    m = needle.size
    for j in range(start, end - m + 1):
        k = 0
        while k < m and at(buf, j + k) == at(needle, k):
            k += 1
        if k == m:
            return j
    return -1


@njit(cache=True, nogil=True)
def starts_with(buf: np.ndarray, start: int, end: int, prefix: np.ndarray) -> bool:
    if end - start < prefix.size:
        return False
    k = 0
    while k < prefix.size and at(buf, start + k) == at(prefix, k):
        k += 1
    return k == prefix.size


@njit(cache=True, nogil=True)
def digits(buf: np.ndarray, start: int, end: int) -> int:
    """The value of ASCII digits buf[start:end], or -1 if any byte is not a digit."""
    value = 0
    for j in range(start, end):
        d = np.int64(at(buf, j)) - 48
        if d < 0 or d > 9:
            return -1
        value = value * 10 + d
    return value


@njit(cache=True, nogil=True)
def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


@njit(cache=True, nogil=True)
def parse_time(buf: np.ndarray, start: int, end: int) -> tuple[int, int]:
    """(0, ns) or (TIME_BAD | TIME_OUT_OF_RANGE, 0): reference.parse_time.

    Any non-ASCII byte fails a separator or digit check, and every character of a valid
    time is one of those, so checking bytes is the same as the reference's characters."""
    n = end - start
    if n not in (16, 19) and not 21 <= n <= 29:
        return TIME_BAD, 0
    if at(buf, start + 4) != 45 or at(buf, start + 7) != 45:  # '-'
        return TIME_BAD, 0
    if at(buf, start + 10) != 84 or at(buf, start + 13) != 58:  # 'T', ':'
        return TIME_BAD, 0
    year = digits(buf, start, start + 4)
    month = digits(buf, start + 5, start + 7)
    day = digits(buf, start + 8, start + 10)
    hour = digits(buf, start + 11, start + 13)
    minute = digits(buf, start + 14, start + 16)
    second = 0
    fraction = 0
    if n >= 19:
        if at(buf, start + 16) != 58:
            return TIME_BAD, 0
        second = digits(buf, start + 17, start + 19)
        if n > 19:
            if at(buf, start + 19) != 46:  # '.'
                return TIME_BAD, 0
            fraction = digits(buf, start + 20, end)
            for _ in range(29 - n):  # pad to nine digits (ljust(9, "0"))
                fraction *= 10
    if year < 0 or month < 0 or day < 0 or hour < 0 or minute < 0 or second < 0:
        return TIME_BAD, 0
    if fraction < 0 or not 1 <= month <= 12:
        return TIME_BAD, 0
    if month == 2:
        month_days = 29 if _is_leap(year) else 28
    elif month in (4, 6, 9, 11):
        month_days = 30
    else:
        month_days = 31
    if not 1 <= day <= month_days or hour > 23 or minute > 59 or second > 59:
        return TIME_BAD, 0
    years = year - 1  # reference.days_from_civil; // floors like Python for year 0
    days = years * 365 + years // 4 - years // 100 + years // 400
    days += _DAYS_BEFORE[month - 1] + (1 if month > 2 and _is_leap(year) else 0)
    days += day - 1 - 719_162
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + second
    if seconds < _MIN_SECONDS or seconds > _MAX_SECONDS:
        return TIME_OUT_OF_RANGE, 0
    return 0, seconds * 1_000_000_000 + fraction


@njit(cache=True, nogil=True)
def parse_user(buf: np.ndarray, start: int, end: int) -> int:
    """ids.parse_user_id: 1-10 ASCII digits, no leading zero, at most MAX_USER_ID; or -1."""
    n = end - start
    if n < 1 or n > 10 or at(buf, start) == 48:
        return -1
    value = digits(buf, start, end)
    if value < 1 or value > MAX_USER_ID:
        return -1
    return value


@njit(cache=True, nogil=True)
def movie_id(buf: np.ndarray, start: int, end: int) -> bool:
    """ids.is_movie_id. The pattern `[a-z0-9+_.*-]*\\+([0-9]{4})?` means: allowed bytes only,
    ending in '+' or in '+' and four digits."""
    n = end - start
    if n < 1 or n > MAX_MOVIE_ID_LENGTH:
        return False
    for j in range(start, end):
        if not _SLUG[at(buf, j)]:
            return False
    if at(buf, end - 1) == 43:  # '+'
        return True
    return n >= 5 and at(buf, end - 5) == 43 and digits(buf, end - 4, end) >= 0


@njit(cache=True, nogil=True)
def span_hash(buf: np.ndarray, start: int, end: int) -> np.uint64:
    """A quick hash of buf[start:end] for the interning table, which compares the bytes on
    a match, so only the spread matters: multiply-xorshift over 8-byte words."""
    h = np.uint64(end - start) * _MIX
    p = start
    while p + 8 <= end:
        h = (h ^ read64(buf, p)) * _MIX
        h = h ^ (h >> np.uint64(29))
        p += 8
    if p < end:
        word = np.uint64(0)
        for j in range(p, end):
            word = (word << np.uint64(8)) | np.uint64(at(buf, j))
        h = (h ^ word) * _MIX
    return h ^ (h >> np.uint64(32))


@njit(cache=True, nogil=True)
def minute_value(buf: np.ndarray, start: int, end: int) -> int:
    """reference._MINUTE `0|[1-9][0-9]{0,4}`: the minute or -1."""
    n = end - start
    if n < 1 or n > 5 or (n > 1 and at(buf, start) == 48):
        return -1
    return digits(buf, start, end)


@njit(cache=True, nogil=True)
def rating_value(buf: np.ndarray, start: int, end: int) -> tuple[bool, int]:
    """reference._RATING `-?(0|[1-9][0-9]{0,2})`: (matched, int value)."""
    negative = start < end and at(buf, start) == 45  # '-'
    first = start + 1 if negative else start
    if not 1 <= end - first <= 3 or (end - first > 1 and at(buf, first) == 48):
        return False, 0
    value = digits(buf, first, end)
    if value < 0:
        return False, 0
    return True, -value if negative else value


@njit(cache=True, nogil=True)
def is_service(buf: np.ndarray, start: int, end: int) -> bool:
    """reference._SERVICE `[A-Za-z0-9._-]+:[0-9]{1,5}`: host bytes, one ':', a 1-5 digit port."""
    colon = find_byte(buf, start, end, 58)
    if colon <= start or not 1 <= end - colon - 1 <= 5:
        return False
    for j in range(start, colon):
        if not _HOST[at(buf, j)]:
            return False
    return digits(buf, colon + 1, end) >= 0


@njit(cache=True, nogil=True)
def status_value(buf: np.ndarray, start: int, end: int) -> int:
    """reference._STATUS `0|[1-5][0-9]{2}`: the status or -1."""
    n = end - start
    if n == 1 and at(buf, start) == 48:
        return 0
    if n != 3 or at(buf, start) < 49 or at(buf, start) > 53:
        return -1
    return digits(buf, start, end)


@njit(cache=True, nogil=True)
def latency_value(buf: np.ndarray, start: int, end: int) -> int:
    """reference._LATENCY `[0-9]{1,9}`: the latency or -1."""
    if not 1 <= end - start <= 9:
        return -1
    return digits(buf, start, end)


@njit(cache=True, nogil=True)
def result_ids(buf: np.ndarray, start: int, end: int) -> bool:
    """All items of an ASCII status-200 result, separated by ", " or ",", are movie ids."""
    item = start
    while True:
        stop = find_byte(buf, item, end, 44)
        if stop < 0:
            stop = end
        if not movie_id(buf, item, stop):
            return False
        if stop == end:
            return True
        item = stop + 1
        if item < end and at(buf, item) == 32:  # the one space of ", "
            item += 1
