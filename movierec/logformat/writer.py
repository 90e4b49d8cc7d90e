"""Writing log lines exactly as the site does (SPEC section 1), many at a time."""

from __future__ import annotations

import numpy as np

NANOS = 1_000_000_000

# Fraction digits on recommendation lines: mostly milli/micro/nano seconds as Java prints
# them, sometimes a writer that strips trailing zeros (".5").
_FRACTION_DIGITS = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9])
_FRACTION_WEIGHTS = np.array([0.04, 0.04, 0.30, 0.03, 0.03, 0.30, 0.03, 0.03, 0.20])
FRACTION_WEIGHTS = _FRACTION_WEIGHTS / _FRACTION_WEIGHTS.sum()


def format_seconds(unix_seconds: np.ndarray) -> list[str]:
    """'YYYY-MM-DDTHH:MM:SS', or 'YYYY-MM-DDTHH:MM' when the seconds are zero (the site's
    writer drops them)."""
    if len(unix_seconds) == 0:
        return []
    low, high = int(unix_seconds.min()), int(unix_seconds.max())
    if high - low < len(unix_seconds):
        # Lines of one simulated tick share few distinct seconds: format each second once.
        table = _format_range(low, high + 1)
        return [table[i] for i in (unix_seconds - low).tolist()]
    return _format(unix_seconds)


def _format_range(start: int, stop: int) -> list[str]:
    return _format(np.arange(start, stop, dtype=np.int64))


def _format(unix_seconds: np.ndarray) -> list[str]:
    text = np.datetime_as_string(unix_seconds.astype("datetime64[s]"), unit="s")
    out = text.tolist()
    for i in np.flatnonzero(unix_seconds % 60 == 0).tolist():
        out[i] = out[i][:-3]
    return out


def format_with_fraction(unix_seconds: int, nanos: int, digits: int) -> str:
    """A recommendation line's time: seconds, then 1..9 fraction digits."""
    base = format_seconds(np.array([unix_seconds], dtype=np.int64))[0]
    if nanos == 0 and unix_seconds % 60 == 0:
        return base
    if len(base) == 16:  # seconds were dropped; with a fraction they are written
        base += ":00"
    return f"{base}.{nanos:09d}"[: len(base) + 1 + digits]


def watch_lines(
    times: list[str], users: list[int], prefixes: list[str], minutes: list[int]
) -> list[str]:
    return [
        f"{t},{u},{p}{m}.mpg" for t, u, p, m in zip(times, users, prefixes, minutes, strict=True)
    ]


def rate_lines(
    times: list[str], users: list[int], prefixes: list[str], stars: list[int]
) -> list[str]:
    return [f"{t},{u},{p}{s}" for t, u, p, s in zip(times, users, prefixes, stars, strict=True)]


def watch_prefix(movie_id: str) -> str:
    return f"GET /data/m/{movie_id}/"


def rate_prefix(movie_id: str) -> str:
    return f"GET /rate/{movie_id}="


def recommendation_line(
    time_text: str, user: int, service: str, status: int, result: str, latency_ms: int
) -> str:
    return (
        f"{time_text},{user},recommendation request {service}, status {status}, "
        f"result: {result}, {latency_ms} ms"
    )
