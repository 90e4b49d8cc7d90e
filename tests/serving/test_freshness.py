"""Freshness counts exactly the events ingestion counts: the same parser on the site's rating
scale, and the same rule against timestamps from the future (dated well after arrival)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from movierec.serving.app import RecommendationService
from movierec.serving.freshness import Freshness
from tests.support.waiting import wait_until

A_YEAR_AHEAD = f"{datetime.now(UTC) + timedelta(days=365):%Y-%m-%dT%H:%M:%S}"

LOG = [
    b"2025-01-01T00:00:00,1,GET /data/m/the+rock+1996/0.mpg",
    b"2025-01-01T00:01:00,2,GET /rate/the+rock+1996=8",  # valid on a 10-star site only
    # Dated a year after it arrives (it is read now): a lie.
    f"{A_YEAR_AHEAD},3,GET /data/m/heat+1995/1.mpg".encode(),
    b"2025-01-01T00:01:30,5,GET /rate/heat+1995=11",  # out of range on either scale
    b"2025-01-01T00:01:40,6,GET /data/m/Heat+1995/1.mpg",  # not a movie id
    b"2025-01-01T00:02:00,4,GET /rate/heat+1995=3",
    b"2025-01-01T00:03:00,99,GET /data/m/heat+1995/2.mpg",  # the last line: all were read
]


def ns(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()) * 10**9


def remembered(tmp_path: Path, rating_scale: int | None) -> tuple[dict, int]:
    """What freshness remembers of LOG, read from a local log, and how many events it took."""
    log = tmp_path / "log"
    log.write_bytes(b"\n".join(LOG) + b"\n")
    service = RecommendationService(tmp_path / "models")
    scale = {} if rating_scale is None else {"rating_scale": rating_scale}
    freshness = Freshness(service, f"file://{log}", poll=0.05, **scale).start()
    try:
        wait_until(lambda: 99 in freshness.recent, timeout=60)
    finally:
        freshness.stop()
    return dict(freshness.recent), service.metrics.fresh_events


def test_a_ten_star_rating_counts_on_a_ten_star_site(tmp_path: Path) -> None:
    recent, events = remembered(tmp_path, 10)
    assert recent == {
        1: {"the+rock+1996": ns("2025-01-01T00:00:00")},
        2: {"the+rock+1996": ns("2025-01-01T00:01:00")},
        4: {"heat+1995": ns("2025-01-01T00:02:00")},
        99: {"heat+1995": ns("2025-01-01T00:03:00")},
    }
    assert events == 4


def test_five_stars_by_default(tmp_path: Path) -> None:
    recent, events = remembered(tmp_path, None)
    assert sorted(recent) == [1, 4, 99]  # the 8 of 5 stars is out of range, as in ingestion
    assert events == 3


@pytest.mark.parametrize("scale", [0, 3, 7, 100])
def test_other_rating_scales_are_refused(tmp_path: Path, scale: int) -> None:
    service = RecommendationService(tmp_path / "models")
    with pytest.raises(ValueError, match="rating_scale is 5 or 10"):
        Freshness(service, f"file://{tmp_path / 'log'}", rating_scale=scale)


def test_a_stream_that_fails_is_reopened_and_followed(tmp_path: Path) -> None:
    """A log that cannot be read yet (here a directory where the file will be; in a
    deployment, a broker still starting) is retried, counted, then followed."""
    log = tmp_path / "log"
    log.mkdir()
    service = RecommendationService(tmp_path / "models")
    freshness = Freshness(service, f"file://{log}", poll=0.05).start()
    try:
        wait_until(lambda: service.metrics.fresh_failures >= 1, timeout=30, what="a failure")
        log.rmdir()
        log.write_bytes(b"\n".join(LOG) + b"\n")
        wait_until(lambda: 99 in freshness.recent, timeout=60, what="the log to be followed")
    finally:
        freshness.stop()
    assert sorted(freshness.recent) == [1, 4, 99]
    assert "movierec_fresh_failures_total" in service.metrics.render().decode()
