"""The Grafana dashboard (deploy/grafana/movierec.json): it loads, asks a Prometheus chosen
by a datasource variable, every panel's PromQL parses in the session's real Prometheus, and
names only metrics the project exports (read from a live service's and a live ingestion's
/metrics, plus the monitor's online figures)."""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.live import start_ingest, start_serve
from tests.support.prometheus import DASHBOARD, Prometheus

# Grafana's own variables, given the values Grafana would put in their place.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
# What the monitor process exports about the online figures (docs/monitoring.md): it is not
# started here, so its names are taken as documented.
MONITOR_METRICS = {
    "movierec_online_conversion",
    "movierec_online_requests",
    "movierec_online_availability",
}
# What the dashboard must show: request rate, latency, availability, errors, arms,
# conversion, rejects by reason, lag and the model version.
REQUIRED = {
    "movierec_requests_total",
    "movierec_request_seconds_bucket",
    "movierec_http_responses_total",
    "movierec_http_timeouts_total",
    "movierec_experiment_answers_total",
    "movierec_online_conversion",
    "movierec_ingest_rejected_total",
    "movierec_ingest_lag_seconds",
    "movierec_model_info",
}
METRIC_NAME = re.compile(r"\b(movierec_[a-zA-Z0-9_]+|process_[a-z_]+)\b")


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def expressions() -> list[tuple[str, str]]:
    """(panel title, PromQL) of every target of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in dashboard()["panels"]
        for target in panel.get("targets", [])
    ]


def substituted(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def exported(url: str) -> set[str]:
    """Every metric name a /metrics answer offers, empty families and histogram series
    included."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    names = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            names.add(name)
            if kind == "histogram":
                names.update(f"{name}{suffix}" for suffix in ("_bucket", "_count", "_sum"))
        elif line and not line.startswith("#"):
            names.add(re.split(r"[{ ]", line, maxsplit=1)[0])
    return names


@pytest.fixture(scope="module")
def live_names(tmp_path_factory: pytest.TempPathFactory) -> Iterator[set[str]]:
    root: Path = tmp_path_factory.mktemp("grafana")
    serve = start_serve(root / "serve")
    try:
        ingest = start_ingest(root / "ingest")
        try:
            yield exported(serve.metrics_url) | exported(ingest.metrics_url)
        finally:
            ingest.stop()
    finally:
        serve.stop()


def test_the_dashboard_loads_and_asks_a_chosen_prometheus() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 36 and board["title"] == "movierec"
    (variable,) = [v for v in board["templating"]["list"] if v["type"] == "datasource"]
    assert variable["query"] == "prometheus"
    reference = {"type": "prometheus", "uid": f"${{{variable['name']}}}"}
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["datasource"] == reference, panel["title"]
        assert panel["targets"], panel["title"]
        assert all(t["datasource"] == reference for t in panel["targets"]), panel["title"]


def test_the_dashboard_shows_what_the_service_is_judged_by() -> None:
    named = {name for _, expr in expressions() for name in METRIC_NAME.findall(expr)}
    assert named >= REQUIRED, f"missing: {sorted(REQUIRED - named)}"


def test_every_expression_parses_in_the_real_prometheus(prometheus: Prometheus) -> None:
    for title, expr in expressions():
        try:
            prometheus.query(substituted(expr))
        except ValueError as error:
            pytest.fail(f"panel {title!r}: {expr}\n{error}")
    with pytest.raises(ValueError, match="bad_data"):  # so a parse error would show
        prometheus.query("sum(rate(movierec_requests_total[1m])")


def test_every_metric_named_is_exported(live_names: set[str]) -> None:
    known = live_names | MONITOR_METRICS
    assert "movierec_ingest_lines_total" in known and "movierec_requests_total" in known
    for title, expr in expressions():
        unknown = set(METRIC_NAME.findall(expr)) - known
        assert not unknown, f"panel {title!r} names metrics nobody exports: {sorted(unknown)}"
