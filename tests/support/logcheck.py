"""Strict patterns of SPEC section 1, written independently of the code under test."""

from __future__ import annotations

import re
from collections.abc import Container
from datetime import datetime

TIME = (
    r"\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])"
    r"T(?:[01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?"
)
USER = r"[1-9]\d{0,9}"
MOVIE = r"[a-z0-9+_.*-]*\+(?:\d{4})?"
WATCH_RE = re.compile(rf"({TIME}),({USER}),GET /data/m/({MOVIE})/(0|[1-9]\d*)\.mpg")
RATE_RE = re.compile(rf"({TIME}),({USER}),GET /rate/({MOVIE})=([1-5])")
REC_RE = re.compile(
    rf"({TIME}),({USER}),recommendation request ([a-z0-9.-]+:\d+), status (0|\d{{3}}), "
    r"result: (.*), (\d+) ms"
)
MOVIE_RE = re.compile(MOVIE)


def parse_time(text: str) -> datetime:
    base = text.partition(".")[0]
    fmt = "%Y-%m-%dT%H:%M:%S" if base.count(":") == 2 else "%Y-%m-%dT%H:%M"
    return datetime.strptime(base, fmt)


def classify(raw: bytes, movies: Container[str]) -> tuple[str, datetime] | None:
    """('watch' | 'rate' | 'recommendation', time) for a clean line, None for dirt."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not line.isprintable():
        return None
    if m := WATCH_RE.fullmatch(line):
        kind, movie = "watch", m[3]
    elif m := RATE_RE.fullmatch(line):
        kind, movie = "rate", m[3]
    elif m := REC_RE.fullmatch(line):
        kind, movie = "recommendation", None
        if m[4] == "200" and m[5]:
            items = re.split(r", ?", m[5])
            if not all(MOVIE_RE.fullmatch(i) for i in items):
                return None
    else:
        return None
    try:
        when = parse_time(m[1])
    except ValueError:
        return None
    if movie is not None and movie not in movies:
        return None
    return kind, when
