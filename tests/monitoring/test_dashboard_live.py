"""The dashboard live, in a real headless Chromium: a small simulated site calling a real
service, ingestion following the site's log, and `movierec monitor` watching both. The
page loads with data in its plots; then the service stops, and the page and
/api/state.json show the service-down alert firing.

Each real server starts once for the module: the tests run in order on one live run (the
second stops the service the first looked at).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import orjson
import pytest

from movierec.http.server import ServerThread
from movierec.registry.experiments import answer_log_dir
from movierec.serving.app import RecommendationService
from movierec.serving.loader import ModelLoader
from tests.support.browser import chromium_dom
from tests.support.commands import movierec
from tests.support.waiting import wait_until

pytestmark = pytest.mark.slow

WORLD = ("--users", "1000", "--movies", "60", "--seed", "3")


@dataclass
class Live:
    root: Path
    service: RecommendationService
    loader: ModelLoader
    server: ServerThread
    monitor_url: str

    def state(self) -> dict:
        with urllib.request.urlopen(f"{self.monitor_url}/api/state.json", timeout=5) as r:
            return orjson.loads(r.read())


def spawn(args: list[str], errors: Path, announce: str) -> tuple[subprocess.Popen, str]:
    """Start `movierec ARGS`; return it and the URL it announces on stderr (`announce`
    is a pattern with one group)."""
    with errors.open("wb") as err:
        proc = subprocess.Popen(
            [sys.executable, "-m", "movierec.cli", *args], stdout=subprocess.DEVNULL, stderr=err
        )
    pattern = re.compile(announce)
    wait_until(
        lambda: pattern.search(errors.read_text()) or proc.poll() is not None,
        what=f"`movierec {args[0]}` to say where it listens",
    )
    found = pattern.search(errors.read_text())
    assert found, errors.read_text()[-3000:]
    return proc, found.group(1)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    root = tmp_path_factory.mktemp("live")
    log, store, models = root / "log", root / "store", root / "models"
    # Two quiet days (the site's calls go nowhere), ingested, and a first model from them.
    for step in (
        ("simulate", *WORLD, "--days", "2", "--service", "http://127.0.0.1:9",
         "--stream", f"file://{log}", "--quiet"),
        ("ingest", "--source", f"file://{log}", "--store", str(store), "--api", "",
         "--catalogue-wait", "0", "--quiet"),
        ("train", "--store", str(store), "--models", str(models), "--budget", "0", "--quiet"),
    ):  # fmt: skip
        done = movierec(*step)
        assert done.returncode == 0, done.stderr[-3000:]
    service = RecommendationService(models, answer_log_dir(models))
    loader = ModelLoader(service, poll=0.2)
    loader.start()
    server = ServerThread(service.http_server()).start()
    wait_until(lambda: service.snapshot is not None, what="the model to load")
    processes: list[subprocess.Popen] = []
    try:
        ingest, ingest_url = spawn(
            ["ingest", "--source", f"file://{log}", "--store", str(store), "--api", "",
             "--follow", "--max-wait", "0.2", "--metrics-port", "0", "--quiet"],
            root / "ingest.err", r"metrics on (http://127\.0\.0\.1:\d+)/metrics",
        )  # fmt: skip
        processes.append(ingest)
        # The site goes on from day 3, an hour a second, calling the real service.
        site = subprocess.Popen(
            [sys.executable, "-m", "movierec.cli", "simulate", *WORLD,
             "--start", "2025-01-03T00:00:00+00:00", "--days", "2", "--speed", "3600",
             "--faults", "0.02", "--service", server.url, "--stream", f"file://{log}",
             "--quiet"],
            stdout=subprocess.DEVNULL, stderr=(root / "site.err").open("wb"),
        )  # fmt: skip
        processes.append(site)
        monitor, monitor_url = spawn(
            ["monitor", "--store", str(store), "--models", str(models), "--service", server.url,
             "--ingest", ingest_url, "--port", "0", "--every", "0.5", "--slow-every", "2",
             "--quiet"],
            root / "monitor.err", r"dashboard on (http://127\.0\.0\.1:\d+)/",
        )  # fmt: skip
        processes.append(monitor)
        yield Live(root, service, loader, server, monitor_url.rstrip("/"))
        assert monitor.poll() is None, (root / "monitor.err").read_text()[-3000:]
    finally:
        for proc in reversed(processes):
            stop(proc)
        server.stop()
        loader.stop()
        service.answers.close()


class Figures(HTMLParser):
    """data-plot -> data-points of every plot, and data-alert -> data-state."""

    def __init__(self, page: str) -> None:
        super().__init__()
        self.plots: dict[str, int] = {}
        self.alerts: dict[str, str] = {}
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if "data-plot" in a:
            self.plots[str(a["data-plot"])] = int(str(a["data-points"]))
        if "data-alert" in a:
            self.alerts[str(a["data-alert"])] = str(a["data-state"])


def has_data(state: dict) -> bool:
    service = [p for p in state["series"]["service"] if "request_rate" in p]
    ingest = [p for p in state["series"]["ingest"] if "lines_rate" in p]
    online = state.get("online") or {}
    return (
        len(service) >= 3
        and len(ingest) >= 3
        and bool(online.get("conversion_by_version"))
        and any(
            i["value"] is not None
            for day in (state.get("drift") or {}).get("days", [])
            for i in day["indicators"].values()
        )
        and bool((state.get("loop") or {}).get("days"))
        and any(p.get("latency_p99_ms") for p in service)
    )


def test_the_page_loads_with_data_in_its_plots(live: Live, tmp_path: Path) -> None:
    wait_until(lambda: has_data(live.state()), timeout=120, what="the monitor to gather data")
    dom = chromium_dom(f"{live.monitor_url}/", tmp_path / "chrome")
    assert "<h1>movierec monitor</h1>" in dom
    figures = Figures(dom)
    empty = {n for n, points in figures.plots.items() if points == 0}
    # No experiment runs here, so only the per-arm plot may be empty.
    assert empty <= {"conversion_arm"}, figures.plots
    assert {"request_rate", "latency", "availability", "errors", "conversion_version",
            "ingest_rejects", "drift", "loop", "versions"} <= set(figures.plots)  # fmt: skip
    assert figures.alerts["MovierecServiceDown"] == "inactive"
    state = live.state()
    assert all(state["steps"][s]["ok"] for s in ("scrape_service", "scrape_ingest", "online"))
    with urllib.request.urlopen(f"{live.monitor_url}/metrics", timeout=5) as r:
        text = r.read().decode()
    assert 'movierec_alert_firing{alertname="MovierecServiceDown"} 0.0' in text
    assert "movierec_recommended_gini " in text


def test_a_stopped_service_shows_as_the_service_down_alert(live: Live, tmp_path: Path) -> None:
    live.server.stop()

    def down() -> str:
        return {a["name"]: a for a in live.state()["alerts"]}["MovierecServiceDown"]["state"]

    # The rule must hold for 30 s before it fires.
    wait_until(lambda: down() == "firing", timeout=120, what="the service-down alert to fire")
    state = live.state()
    assert state["steps"]["scrape_service"]["ok"] is False
    assert state["steps"]["online"]["ok"]  # the rest of the monitor carries on
    dom = chromium_dom(f"{live.monitor_url}/", tmp_path / "chrome")
    assert Figures(dom).alerts["MovierecServiceDown"] == "firing"
    assert 'data-step="scrape_service" data-ok="false"' in dom
