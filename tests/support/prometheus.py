"""A real Prometheus for tests, driven through scripts/prometheus.py (the same script people
use), and the few calls of its HTTP API the tests make."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.ports import free_port

REPO = Path(__file__).resolve().parent.parent.parent
SCRIPT = REPO / "scripts" / "prometheus.py"
RULES_FILE = REPO / "deploy" / "prometheus" / "movierec-rules.yml"
RULES_TESTS = REPO / "deploy" / "prometheus" / "movierec-rules.test.yml"
DASHBOARD = REPO / "deploy" / "grafana" / "movierec.json"


def require(binary: str, what: str) -> str:
    """The binary's path; skipped without it on a developer machine, failed in CI (tests
    that silently skip there would make a green build mean nothing)."""
    path = binary if Path(binary).is_file() else shutil.which(binary)
    if path:
        return path
    message = f"{what} is not installed (scripts/setup.sh installs Debian's prometheus package)"
    if os.environ.get("CI"):
        pytest.fail(f"{message}; monitoring tests must run in CI", pytrace=False)
    pytest.skip(message)


def script(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@dataclass
class Prometheus:
    url: str
    dir: Path

    def set_targets(self, **jobs: str) -> None:
        """Scrape exactly these HOST:PORT addresses, by job (the file Prometheus rereads)."""
        done = script("targets", "--dir", str(self.dir), *(
            arg for job, address in jobs.items() for arg in ("--target", f"{job}={address}")
        ))  # fmt: skip
        assert done.returncode == 0, done.stderr

    def api(self, path: str, **params: str) -> Any:
        """The `data` of an API answer; an error answer (a bad query) raises ValueError."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}{path}{query}", timeout=10) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as error:
            answer = json.loads(error.read())
        if answer.get("status") != "success":
            raise ValueError(f"{answer.get('errorType')}: {answer.get('error')}")
        return answer["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        return self.api("/api/v1/query", query=expr)["result"]

    def targets(self) -> list[dict[str, Any]]:
        return self.api("/api/v1/targets")["activeTargets"]

    def alerts(self) -> list[dict[str, Any]]:
        return self.api("/api/v1/alerts")["alerts"]


def start_prometheus(directory: Path, interval: str = "1s") -> Prometheus:
    port = free_port()
    done = script(
        "start", "--dir", str(directory), "--port", str(port),
        "--rules", str(RULES_FILE), "--interval", interval,
    )  # fmt: skip
    assert done.returncode == 0 and done.stdout.startswith("url="), done.stderr
    return Prometheus(done.stdout.strip().removeprefix("url="), directory)


def stop_prometheus(prometheus: Prometheus) -> None:
    script("stop", "--dir", str(prometheus.dir))
