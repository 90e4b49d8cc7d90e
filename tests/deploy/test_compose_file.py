"""compose.yaml without running it: valid against the Compose Specification, and its parts
agree on the port plan (nginx's upstream and Prometheus's targets are the replicas')."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.schemas import assert_valid

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "compose.yaml"


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return dict(yaml.safe_load(COMPOSE.read_text())["services"])


def test_the_compose_file_is_valid() -> None:
    assert_valid(COMPOSE, "vendor.compose-spec")


def replica_ports(services: dict[str, Any]) -> set[int]:
    return {
        int(spec["environment"]["MOVIEREC_SERVE_PORT"])
        for name, spec in services.items()
        if name.startswith("serve-")
    }


def test_nginx_and_prometheus_know_every_replica(services: dict[str, Any]) -> None:
    ports = replica_ports(services)
    assert len(ports) == 3
    nginx = (ROOT / "deploy/compose/nginx.conf").read_text()
    assert {int(p) for p in re.findall(r"server 127\.0\.0\.1:(\d+)", nginx)} == ports
    assert "listen 127.0.0.1:8082" in nginx  # the port the site calls
    prometheus = yaml.safe_load((ROOT / "deploy/compose/prometheus.yml").read_text())
    jobs = {
        job["job_name"]: job["static_configs"][0]["targets"] for job in prometheus["scrape_configs"]
    }
    assert {int(t.rsplit(":", 1)[1]) for t in jobs["movierec"]} == ports
    ingest = services["ingest"]["command"]
    assert jobs["movierec-ingest"] == [f"127.0.0.1:{_flag(ingest, '--metrics-port')}"]


def test_every_movierec_part_shares_the_data_volume_and_the_stream(
    services: dict[str, Any],
) -> None:
    movierec = {n: s for n, s in services.items() if "movierec" in s["image"]}
    assert set(movierec) == {"site", "ingest", "schedule", "serve-1", "serve-2", "serve-3"}
    assert all(s["volumes"] == ["movierec-data:/data"] for s in movierec.values())
    streams = {
        _flag(s["command"], "--stream") or _flag(s["command"], "--source")
        for n, s in movierec.items()
        if n != "schedule"
    }
    assert streams == {"kafka://127.0.0.1:9092/movielog"}
    assert "PLAINTEXT://127.0.0.1:9092" in services["kafka"]["environment"]["KAFKA_LISTENERS"]


def _flag(command: list[str], name: str) -> str | None:
    return next((a.split("=", 1)[1] for a in command if a.startswith(f"{name}=")), None)
