"""Strict patterns of SPEC sections 1 and 3, on their own: the simulator's second opinion.

The simulator asks `is_valid_line` whether each line it dirtied really is dirt (and not, by
chance, another valid line), so that its ledger counts exactly what a correct ingestion must
reject. The patterns are written here from the SPEC text alone, sharing no code with the
parsers (`reference`, `batch`) or with the id rules they use (`movierec.ids`), on purpose: a
second opinion built on the parsers' code would share their mistakes, and a line that both got
wrong would then agree with the ledger and pass every test unnoticed.
"""

from __future__ import annotations

import re
from datetime import datetime

# SPEC section 3: only a-z 0-9 + _ . - *, then the release year after a '+' (or no year).
MOVIE_ID_PATTERN = r"[a-z0-9+_.*-]*\+(?:[0-9]{4})?"

_TIME = r"(?P<time>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,9})?)?)"
_USER = r"(?P<user>[1-9]\d{0,9})"
_MOVIE = rf"(?P<movie>{MOVIE_ID_PATTERN})"
WATCH = re.compile(rf"{_TIME},{_USER},GET /data/m/{_MOVIE}/(?P<minute>0|[1-9]\d{{0,4}})\.mpg")
RATE = re.compile(rf"{_TIME},{_USER},GET /rate/{_MOVIE}=(?P<rating>[1-9]\d?)")
RECOMMENDATION = re.compile(
    rf"{_TIME},{_USER},recommendation request (?P<service>[^\s,:]+:\d{{1,5}}), "
    r"status (?P<status>0|[1-9]\d{2}), result: (?P<result>.*), (?P<latency>\d{1,9}) ms"
)
_RESULT_ITEM = re.compile(MOVIE_ID_PATTERN)


def valid_time(text: str) -> bool:
    base = text.split(".", 1)[0]
    try:
        datetime.strptime(base, "%Y-%m-%dT%H:%M:%S" if base.count(":") == 2 else "%Y-%m-%dT%H:%M")
    except ValueError:
        return False
    return True


def is_valid_line(
    line: str | bytes, known_movie: set[str] | dict[str, int] | None = None, rating_scale: int = 5
) -> bool:
    """Whether line is a clean log line: right shape, real date, rating in scale, and (when a
    catalogue is given) a movie that exists."""
    if isinstance(line, bytes):
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError:
            return False
    if not line.isascii() or not line.isprintable():
        return False
    for pattern in (WATCH, RATE, RECOMMENDATION):
        match = pattern.fullmatch(line)
        if match is not None:
            break
    else:
        return False
    if not valid_time(match["time"]):
        return False
    fields = match.groupdict()
    if fields.get("rating") is not None and not 1 <= int(fields["rating"]) <= rating_scale:
        return False
    if fields.get("movie") is not None and known_movie is not None:
        return fields["movie"] in known_movie
    if fields.get("status") == "200" and fields["result"]:
        return all(_RESULT_ITEM.fullmatch(item.strip()) for item in fields["result"].split(","))
    return True
