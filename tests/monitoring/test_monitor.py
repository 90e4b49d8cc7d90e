"""The monitor's rounds against a stand-in service whose metrics the test sets: rates from
consecutive scrapes, a service that stops answering (recorded, never fatal, the down alert
pending then firing on the monitor's clock), a restart that keeps history and alerts, and
the three endpoints."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from movierec.http.server import HTTPServer, Response, ServerThread
from movierec.monitoring.config import MonitorConfig
from movierec.monitoring.monitor import Monitor
from movierec.serving.metrics import CONTENT_TYPE, Metrics
from movierec.store.events import EventStore
from tests.online.handmade import DAY_NS, T0, commit, register, session, write_watch
from tests.support.serving import request

World = tuple[MonitorConfig, Metrics, ServerThread]


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    store = EventStore(tmp_path / "store")
    write_watch(store, 1, session(1, "a+2000", T0, 5) + session(2, "b+2000", T0 + DAY_NS, 5))
    commit(store, 1)
    register(tmp_path / "models", "v1", {"from": "2025-01-01T00:00:00", "to": "2025-01-01"})
    metrics = Metrics()
    metrics.model_version = "v1"
    server = ServerThread(
        HTTPServer(lambda _: Response(200, metrics.render(), CONTENT_TYPE), port=0)
    ).start()
    config = MonitorConfig(
        store=store.root, models_dir=tmp_path / "models", service=server.url, port=0
    )
    yield config, metrics, server
    server.stop()


def test_rounds_rates_a_service_that_goes_down_and_a_restart(world) -> None:
    config, metrics, server = world
    clock = Clock(1_000.0)
    monitor = Monitor(config, clock=clock)
    monitor.step()
    metrics.requests[("recommend", 200)] += 45
    metrics.requests[("recommend", 500)] += 5
    for _ in range(50):
        metrics.http.latency.observe(0.004)
    clock.now += 5
    state = monitor.step()
    point = state["series"]["service"][-1]
    assert point["request_rate"] == 10.0 and point["error_rate"] == 1.0
    assert point["availability"] == 0.9 and point["version"] == "v1"
    assert 2.5 <= point["latency_p50_ms"] <= 5.0
    assert all(s["ok"] for n, s in state["steps"].items()), state["steps"]
    assert state["drift"]["window"]["version"] == "v1"
    assert state["loop"]["catalogue"] == 2
    assert state["registry"]["production"] == "v1"
    down = {a["name"]: a for a in state["alerts"]}["MovierecServiceDown"]
    assert down["state"] == "inactive"

    server.stop()
    clock.now += 5
    state = monitor.step()
    assert state["steps"]["scrape_service"]["ok"] is False
    assert "scrape_service" in state["steps"] and state["steps"]["online"]["ok"]
    assert state["series"]["service"][-1]["up"] is False
    assert {a["name"]: a for a in state["alerts"]}["MovierecServiceDown"]["state"] == "pending"
    clock.now += 31  # the rule's `for` is 30 s
    state = monitor.step()
    down = {a["name"]: a for a in state["alerts"]}["MovierecServiceDown"]
    assert down["state"] == "firing"
    assert [(t["from"], t["to"]) for t in down["history"]] == [
        ("inactive", "pending"),
        ("pending", "firing"),
    ]

    again = Monitor(config, clock=clock)
    assert len(again.history.points["service"]) == 4
    clock.now += 5
    state = again.step()
    assert {a["name"]: a for a in state["alerts"]}["MovierecServiceDown"]["state"] == "firing"
    assert (config.models_dir / "monitor" / "state.json").exists()

    page = again.handle(request("/"))
    assert page.status == 200 and b"MovierecServiceDown" in page.body
    api = orjson.loads(again.handle(request("/api/state.json")).body)
    assert api["rounds"] == 1 and api["steps"]["scrape_service"]["ok"] is False
    text = again.handle(request("/metrics")).body.decode()
    assert 'movierec_alert_firing{alertname="MovierecServiceDown"} 1.0' in text
    assert 'movierec_monitor_step_ok{step="scrape_service"} 0.0' in text
    assert again.handle(request("/nope")).status == 404
    assert again.handle(request("/", "POST")).status == 405


def test_a_store_with_nothing_in_it_fails_steps_not_the_monitor(tmp_path: Path) -> None:
    config = MonitorConfig(
        store=tmp_path / "store", models_dir=tmp_path / "models", service="http://127.0.0.1:9"
    )
    state = Monitor(config).step()
    assert state["steps"]["online"]["ok"] is False
    assert "ingest" in state["steps"]["online"]["error"]
    assert state["steps"]["scrape_service"]["ok"] is False
    assert state["steps"]["alerts"]["ok"]
