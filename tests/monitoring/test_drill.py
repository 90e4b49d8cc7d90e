"""The incident drill, on real parts: a running `movierec ingest --follow` against the
simulated site's API, the API switched to answering 503 to everything through its control
endpoint (movierec_sim/drill.py), and the alert evaluator fed with real scrapes of
ingestion's /metrics. Both catalogue alerts must go pending once the scrapes show failing
requests and an unbroken run of them, fire `for` later, and stay silent before the incident."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from movierec.monitoring.evaluator import FIRING, INACTIVE, PENDING, Evaluator
from movierec.monitoring.rules import INGEST_JOB, by_name
from movierec.monitoring.scrape import fetch
from movierec_sim.api import SiteApiServer
from movierec_sim.drill import Drill
from movierec_sim.world import World, WorldConfig
from tests.support.ports import free_port
from tests.support.simulated import simulate_into
from tests.support.waiting import wait_until

ALERT = "MovierecCatalogueFailing"  # the share of requests failing
UNREACHABLE = "MovierecCatalogueUnreachable"  # failures in a row: what the live drill needed


def counter(text: str | None, name: str) -> float:
    """The sum of a counter's samples in a scrape's text (0 when absent)."""
    total = 0.0
    for line in (text or "").splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


@pytest.fixture
def ingesting(tmp_path: Path) -> Iterator[tuple[SiteApiServer, Path, World, str]]:
    world = World(WorldConfig(users=30_000, movies=300, seed=11))
    log = tmp_path / "log"
    simulate_into(f"file://{log}", world, 3_000, 0.0, seed=1)
    port = free_port()
    with SiteApiServer(world, port=0, control=True) as api:
        ingest = subprocess.Popen(
            [sys.executable, "-m", "movierec.cli", "ingest", "--source", f"file://{log}",
             "--store", str(tmp_path / "store"), "--follow", "--api", api.url,
             "--metrics-port", str(port), "--max-wait", "0.2"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )  # fmt: skip
        try:
            yield api, log, world, f"http://127.0.0.1:{port}"
        finally:
            ingest.terminate()
            ingest.wait(60)


def test_a_catalogue_outage_fires_its_alert_and_nothing_before(
    ingesting: tuple[SiteApiServer, Path, World, str],
) -> None:
    api, log, world, metrics = ingesting
    requests = "movierec_ingest_catalogue_requests_total"
    errors = "movierec_ingest_catalogue_errors_total"
    wait_until(lambda: counter(fetch(metrics).text, requests) > 0, 120, what="first lookups")
    wait_until(lambda: api.stats()["requests"] >= counter(fetch(metrics).text, requests) > 0)
    ev, at = Evaluator(), 0.0
    for _ in range(4):  # healthy minutes: lookups answered, no alert
        ev.observe_scrape(INGEST_JOB, fetch(metrics).text, at)
        assert {a.state for a in ev.evaluate(at) if a.name in (ALERT, UNREACHABLE)} == {INACTIVE}
        at += 60
    drill = Drill(api.url, "outage")
    drill.start()
    before = counter(fetch(metrics).text, errors)
    simulate_into(f"file://{log}", world, 3_000, 0.0, seed=2)  # new users to look up
    wait_until(lambda: counter(fetch(metrics).text, errors) > before, 60, what="failed lookups")
    streak = "movierec_ingest_catalogue_failure_streak"
    wait_until(lambda: counter(fetch(metrics).text, streak) > 10, 90, what="failures in a row")
    states, unreachable = [], []
    for _ in range(4):  # one scrape a minute of the evaluator's clock
        text = fetch(metrics).text
        ev.observe_scrape(INGEST_JOB, text, at)
        alerts = {a.name: a.state for a in ev.evaluate(at)}
        states.append(alerts[ALERT])
        unreachable.append(alerts[UNREACHABLE])
        at += 60
    drill.end()
    assert states[0] == PENDING, ev.series("catalogue_error_share_5m", at - 240)
    assert states[2:] == [FIRING, FIRING]  # `for` is two minutes
    assert unreachable == [PENDING, PENDING, FIRING, FIRING], ev.series(
        "catalogue_failure_streak", at
    )
    assert by_name(ALERT).for_seconds == by_name(UNREACHABLE).for_seconds == 120
    # The API answers again: the next request (within the pacer's pause) ends the run.
    wait_until(lambda: counter(fetch(metrics).text, streak) == 0, 120, what="an answer")
    assert [e["event"] for e in drill.timeline] == ["incident started", "incident ended"]
