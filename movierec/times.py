"""Time units and the one text form of a time that reports and provenance use."""

from __future__ import annotations

from datetime import UTC, datetime

SECOND_NS = 1_000_000_000
DAY_NS = 86_400 * SECOND_NS


def iso(ns: int) -> str:
    """A time in nanoseconds since the epoch as ISO 8601 UTC, to the second."""
    return datetime.fromtimestamp(ns / 1e9, UTC).isoformat(timespec="seconds")
