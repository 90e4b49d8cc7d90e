"""A real Prometheus (the session's, with the shipped rules) scraping a real `movierec
serve` and a real `movierec ingest --metrics-port`: both show up as targets, their figures
can be queried, and stopping the service makes the service-down alert fire."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from movierec.monitoring.rules import INGEST_JOB, SERVICE_JOB
from tests.support.live import LOG_LINES, Live, start_ingest, start_serve
from tests.support.prometheus import Prometheus
from tests.support.waiting import wait_until


@pytest.fixture
def watched(prometheus: Prometheus, tmp_path: Path) -> Iterator[tuple[Live, Live]]:
    """The service and the ingestion, running, and Prometheus told to scrape them."""
    serve = start_serve(tmp_path / "serve")
    try:
        ingest = start_ingest(tmp_path / "ingest")
        try:
            prometheus.set_targets(**{SERVICE_JOB: serve.address, INGEST_JOB: ingest.address})
            yield serve, ingest
        finally:
            ingest.stop()
    finally:
        serve.stop()
        prometheus.set_targets()


def health(prometheus: Prometheus) -> dict[tuple[str, str], str]:
    return {
        (t["labels"]["job"], t["labels"]["instance"]): t["health"] for t in prometheus.targets()
    }


def firing(prometheus: Prometheus, name: str, instance: str) -> list[dict]:
    return [
        a
        for a in prometheus.alerts()
        if a["labels"]["alertname"] == name
        and a["labels"].get("instance") == instance
        and a["state"] == "firing"
    ]


def test_prometheus_scrapes_both_and_sees_the_service_go_down(
    prometheus: Prometheus, watched: tuple[Live, Live]
) -> None:
    serve, ingest = watched
    for user in (1000, 1001, 7_777_777):
        assert serve.get(f"/recommend/{user}")[0] == 200
    wait_until(
        lambda: (
            health(prometheus).get((SERVICE_JOB, serve.address)) == "up"
            and health(prometheus).get((INGEST_JOB, ingest.address)) == "up"
        ),
        timeout=60,
        what="Prometheus to find both targets up",
    )
    query = f'movierec_requests_total{{instance="{serve.address}",route="recommend"}}'
    wait_until(
        lambda: sum(float(r["value"][1]) for r in prometheus.query(query)) >= 3,
        timeout=30,
        what="Prometheus to hold the service's request counts",
    )
    lines = f'movierec_ingest_lines_total{{instance="{ingest.address}"}}'
    wait_until(
        lambda: [float(r["value"][1]) for r in prometheus.query(lines)] == [len(LOG_LINES)],
        timeout=30,
        what="Prometheus to hold the ingestion's line count",
    )
    empty = f'movierec_ingest_rejected_total{{instance="{ingest.address}",reason="empty"}}'
    assert [float(r["value"][1]) for r in prometheus.query(empty)] == [1]
    assert prometheus.query(f'movierec_model_info{{instance="{serve.address}"}}')
    assert not firing(prometheus, "MovierecServiceDown", serve.address)

    stopped = time.time()
    serve.stop()
    wait_until(
        lambda: firing(prometheus, "MovierecServiceDown", serve.address),
        timeout=90,
        every=0.5,
        what="the service-down alert to fire",
    )
    (alert,) = firing(prometheus, "MovierecServiceDown", serve.address)
    assert alert["labels"]["severity"] == "critical"
    # Active from the first failed scrape on, and firing only once `for` (30 s) had passed.
    active = _unix(alert["activeAt"])
    assert stopped - 2 <= active and time.time() >= active + 30
    assert health(prometheus)[(SERVICE_JOB, serve.address)] == "down"


def _unix(stamp: str) -> float:
    # Prometheus writes nanoseconds; Python's parser takes at most microseconds.
    head, _, rest = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{rest[:6] or '0'}+00:00").timestamp()
