"""compose.yaml brought up with podman-compose: Kafka, the simulated site, ingestion,
retraining, three replicas behind nginx and Prometheus; /recommend answers through nginx
from a model the scheduler trained in the containers."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, SCRIPT, podman
from tests.support.waiting import wait_until

# compose.yaml's port plan (host networking).
PORTS = {9092: "Kafka", 9093: "Kafka's controller", 8080: "the site's API", 8082: "nginx",
         8091: "replica 1", 8092: "replica 2", 8093: "replica 3", 9108: "ingestion's metrics",
         9090: "Prometheus"}  # fmt: skip
# A small, fast site, retrained often: a model within a minute or so.
ENV = {
    "STANDINS": "1",
    "SITE_USERS": "2000",
    "SITE_MOVIES": "300",
    "SITE_SPEED": "6000",
    "RETRAIN_EVERY": "20",
    "RETRAIN_BUDGET": "5",
    "RETRAIN_MIN_EVENTS": "2000",
}


def taken(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def compose(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SCRIPT), "compose", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **ENV},
        cwd=ROOT,
        check=False,
    )


def get(url: str) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, b"", {}
    except OSError:
        return 0, b"", {}


def logs(service: str) -> str:
    return podman("logs", "--tail", "30", f"movierec_{service}_1", check=False).stderr[-3000:]


@pytest.fixture
def stack(movierec_image: str, standin_image: str) -> Iterator[None]:
    busy = [f"{port} ({what})" for port, what in PORTS.items() if taken(port)]
    assert not busy, f"compose.yaml needs these ports, in use here: {', '.join(busy)}"
    up = compose("up", "-d")
    try:
        assert up.returncode == 0, up.stderr[-3000:]
        yield
    finally:
        compose("down", "-v", "--timeout", "10")
        # Anything `down` left (a container still stopping) goes by its project label.
        left = podman("ps", "-aq", "--filter", "label=io.podman.compose.project=movierec")
        for container in left.stdout.split():
            podman("rm", "--force", "--volumes", container, check=False)
        for volume in ("movierec-data", "kafka-data", "prometheus-data"):
            podman("volume", "rm", "--force", f"movierec_{volume}", check=False)


def test_recommend_answers_through_the_load_balancer(stack: None, tmp_path: Path) -> None:
    url = "http://127.0.0.1:8082/recommend/1"
    try:
        wait_until(lambda: get(url)[0] == 200, timeout=240, what="an answer through nginx")
    except BaseException:
        print("\n".join(f"== {s}\n{logs(s)}" for s in ("ingest", "schedule", "serve-1")))
        raise
    status, body, headers = get(url)
    assert status == 200
    assert len(body.decode().strip().split(",")) == 20
    version = headers["X-Model-Version"]
    # Every replica serves the version the scheduler put in production.
    for port in (8091, 8092, 8093):
        wait_until(
            lambda p=port: (
                json.loads(get(f"http://127.0.0.1:{p}/healthz")[1] or b"{}")
                .get("model", {})
                .get("version")
                == version
            ),
            timeout=30,
            what=f"replica :{port} to serve {version}",
        )
    # Prometheus scrapes the three replicas and ingestion.
    targets_url = "http://127.0.0.1:9090/api/v1/targets"

    def targets() -> set[tuple[str, str]]:
        found = json.loads(get(targets_url)[1] or b'{"data": {"activeTargets": []}}')
        return {
            (t["labels"]["job"], t["labels"]["instance"])
            for t in found["data"]["activeTargets"]
            if t["health"] == "up"
        }

    expected = {("movierec", f"127.0.0.1:{p}") for p in (8091, 8092, 8093)}
    expected.add(("movierec-ingest", "127.0.0.1:9108"))
    wait_until(lambda: targets() == expected, timeout=60, what="Prometheus's targets up")
