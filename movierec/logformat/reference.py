"""The site's three log line kinds (SPEC section 1): the reference parser and validator.

This is the slow, obviously correct definition of a valid line and of the reason a line
is rejected; the fast batch parser (`movierec.logformat.batch`) must agree with it on
every input, which the tests check with generated and mutated lines.

Fields are checked left to right and the first failure names the reason, so a line with
several defects always gets the same reason from both parsers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from enum import IntEnum

from movierec.ids import is_movie_id, parse_user_id

MAX_LINE_BYTES = 16 * 1024


class Kind(IntEnum):
    WATCH = 0
    RATE = 1
    RECOMMENDATION = 2
    OTHER = 3  # a well-formed line of a kind movierec does not use (GET /create_account)


KIND_NAMES = ("watch", "rate", "recommendation", "other")

# Why a line was rejected. The parser's reasons come first; later stages add their own.
REASONS: tuple[str, ...] = (
    "empty",
    "too_long",
    "encoding",  # not UTF-8
    "control_character",
    "malformed",  # none of the line shapes
    "bad_timestamp",
    "bad_user_id",
    "bad_movie_id",
    "bad_minute",
    "bad_rating",  # not a number
    "rating_out_of_range",
    "extra_field",  # a complete line followed by fields the format never had
    "bad_service",
    "bad_status",
    "bad_result",  # a status-200 result that is not a list of movie ids
    "bad_latency",
    "future_timestamp",  # later than the stream's own time allows (ingestion)
    "unknown_movie",  # a well-formed id the catalogue does not know (ingestion)
)
REASON_CODE = {name: code for code, name in enumerate(REASONS)}

_WATCH = "GET /data/m/"
_RATE = "GET /rate/"
_OTHER = {"GET /create_account": "create_account"}
_REC = "recommendation request "
_SERVICE = re.compile(r"[A-Za-z0-9._-]+:[0-9]{1,5}")
_STATUS = re.compile(r"0|[1-5][0-9]{2}")
_LATENCY = re.compile(r"[0-9]{1,9}")
_MINUTE = re.compile(r"0|[1-9][0-9]{0,4}")
_RATING = re.compile(r"-?(?:0|[1-9][0-9]{0,2})")
_RESULT_SEPARATOR = re.compile(r", ?")
_DAYS_BEFORE_MONTH = (0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334)


@dataclass(slots=True)
class Event:
    kind: Kind
    time_ns: int  # nanoseconds since 1970-01-01T00:00 UTC
    user: int
    movie: str = ""  # watch and rate
    value: int = 0  # minute (watch), stars (rate), status (recommendation)
    latency_ms: int = 0
    service: str = ""
    result: str = ""  # the raw result text of a recommendation line
    items: tuple[str, ...] = field(default_factory=tuple)  # ids of a status-200 result
    other: str = ""  # the name of an unused kind


@dataclass(slots=True, frozen=True)
class Reject:
    reason: str


def parse_line(raw: bytes, rating_scale: int = 5) -> Event | Reject:
    if not raw:
        return Reject("empty")
    if len(raw) > MAX_LINE_BYTES:
        return Reject("too_long")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Reject("encoding")
    if any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text):
        return Reject("control_character")
    first = text.find(",")
    if first < 0:
        return Reject("malformed")
    time_ns = parse_time(text[:first])
    if time_ns is None:
        return Reject("bad_timestamp")
    second = text.find(",", first + 1)
    if second < 0:
        return Reject("malformed")
    user = parse_user_id(text[first + 1 : second])
    if user is None:
        return Reject("bad_user_id")
    rest = text[second + 1 :]
    if rest.startswith(_WATCH):
        return _watch(rest[len(_WATCH) :], time_ns, user)
    if rest.startswith(_RATE):
        return _rate(rest[len(_RATE) :], time_ns, user, rating_scale)
    if rest.startswith(_REC):
        return _recommendation(rest[len(_REC) :], time_ns, user)
    if rest in _OTHER:
        return Event(Kind.OTHER, time_ns, user, other=_OTHER[rest])
    return Reject("malformed")


def _watch(body: str, time_ns: int, user: int) -> Event | Reject:
    if not body.endswith(".mpg"):
        return Reject("extra_field" if ".mpg," in body else "malformed")
    core = body[:-4]
    slash = core.rfind("/")
    if slash < 0:
        return Reject("malformed")
    movie, minute = core[:slash], core[slash + 1 :]
    if not is_movie_id(movie):
        return Reject("bad_movie_id")
    if not _MINUTE.fullmatch(minute):
        return Reject("bad_minute")
    return Event(Kind.WATCH, time_ns, user, movie, int(minute))


def _rate(body: str, time_ns: int, user: int, scale: int) -> Event | Reject:
    equals = body.rfind("=")
    if equals < 0:
        return Reject("malformed")
    movie, stars = body[:equals], body[equals + 1 :]
    if not is_movie_id(movie):
        return Reject("bad_movie_id")
    if "," in stars:
        return Reject("extra_field")
    if not _RATING.fullmatch(stars):
        return Reject("bad_rating")
    value = int(stars)
    if not 1 <= value <= scale:
        return Reject("rating_out_of_range")
    return Event(Kind.RATE, time_ns, user, movie, value)


def _recommendation(body: str, time_ns: int, user: int) -> Event | Reject:
    at = body.find(", status ")
    if at < 0:
        return Reject("malformed")
    service = body[:at]
    if not _SERVICE.fullmatch(service):
        return Reject("bad_service")
    after = body[at + len(", status ") :]
    at = after.find(", result: ")
    if at < 0:
        return Reject("malformed")
    status = after[:at]
    if "," in status:
        return Reject("extra_field")
    if not _STATUS.fullmatch(status):
        return Reject("bad_status")
    tail = after[at + len(", result: ") :]
    if not tail.endswith(" ms"):
        return Reject("extra_field" if " ms, " in tail else "malformed")
    last = tail.rfind(", ", 0, len(tail) - 3)
    if last < 0:
        return Reject("malformed")
    result, latency = tail[:last], tail[last + 2 : -3]
    if not _LATENCY.fullmatch(latency):
        return Reject("bad_latency")
    items: tuple[str, ...] = ()
    if status == "200" and result:
        items = tuple(_RESULT_SEPARATOR.split(result))
        if not all(is_movie_id(item) for item in items):
            return Reject("bad_result")
    return Event(
        Kind.RECOMMENDATION, time_ns, user, "", int(status), int(latency), service, result, items
    )


def parse_time(text: str) -> int | None:
    """Nanoseconds since the epoch for YYYY-MM-DDTHH:MM[:SS[.fraction of 1-9 digits]]."""
    n = len(text)
    if n not in (16, 19) and not 21 <= n <= 29:
        return None
    if text[4] != "-" or text[7] != "-" or text[10] != "T" or text[13] != ":":
        return None
    parts = [text[0:4], text[5:7], text[8:10], text[11:13], text[14:16]]
    second, fraction = "00", ""
    if n >= 19:
        if text[16] != ":":
            return None
        second = text[17:19]
        if n > 19:
            if text[19] != ".":
                return None
            fraction = text[20:]
    digits = [*parts, second, fraction]
    if not all(p.isascii() and p.isdigit() for p in digits if p) or (n > 19 and not fraction):
        return None
    year, month, day, hour, minute, sec = (int(p) for p in (*parts, second))
    if not (1 <= month <= 12 and 1 <= day <= _days_in_month(year, month)):
        return None
    if hour > 23 or minute > 59 or sec > 59:
        return None
    days = days_from_civil(year, month, day)
    seconds = ((days * 24 + hour) * 60 + minute) * 60 + sec
    ns = seconds * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)
    # Stored as int64 nanoseconds (1677..2262): a time outside cannot be stored as it is.
    return ns if -(2**63) <= ns < 2**63 else None


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_in_month(year: int, month: int) -> int:
    if month == 2:
        return 29 if _is_leap(year) else 28
    return 30 if month in (4, 6, 9, 11) else 31


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date."""
    years = year - 1
    days = years * 365 + years // 4 - years // 100 + years // 400
    days += _DAYS_BEFORE_MONTH[month - 1] + (1 if month > 2 and _is_leap(year) else 0)
    return days + day - 1 - 719_162  # 719,162 days from 0001-01-01 to 1970-01-01
