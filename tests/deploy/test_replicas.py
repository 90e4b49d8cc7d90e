"""Replicas behind nginx, started by scripts/replicas.sh, under wrk's load: a crash costs
no more than the requests in flight, a rolling restart costs none, and a release reaches
every replica."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from movierec.registry.versions import Registry
from tests.support.ports import free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "replicas.py"
CONNECTIONS = 16

# wrk's own tally as one JSON line, and a user id per request (nginx spreads them).
WRK_LUA = """
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", "/recommend/" .. (n % 2000 + 1))
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('JSON {"requests": %d, "connect": %d, "read": %d, "write": %d, ' ..
    '"timeout": %d, "status": %d}\\n', summary.requests, e.connect, e.read, e.write,
    e.timeout, e.status))
end
"""


def tool(name: str, why: str) -> str:
    found = shutil.which(name) or next(
        (p for p in (f"/usr/sbin/{name}",) if os.access(p, os.X_OK)), None
    )
    if found is None:
        message = f"{name} is not installed (scripts/setup.sh installs it); {why}"
        if os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def replicas(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Cluster:
    def __init__(self, directory: Path, models: Path, port: int) -> None:
        self.directory, self.models, self.port = directory, models, port

    def status(self) -> dict:
        done = replicas("status", "--dir", str(self.directory))
        return dict(json.loads(done.stdout))

    def served(self) -> list[int]:
        """/recommend answers each live replica has given (its own counter)."""
        counts = []
        for replica in self.status()["replicas"]:
            try:
                url = f"http://127.0.0.1:{replica['port']}/metrics"
                text = urllib.request.urlopen(url, timeout=2).read().decode()
            except OSError:
                counts.append(-1)
                continue
            found = re.findall(
                r'movierec_requests_total\{route="recommend",status="200"\} (\S+)', text
            )
            counts.append(int(float(found[0])) if found else 0)
        return counts


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory, trained_models: Path) -> Iterator[Cluster]:
    """One set of replicas for the module (starting three takes a while): the crash test
    restarts them all, and the release test, last, promotes another version."""
    tool("nginx", "the replicas run behind it")
    tmp_path = tmp_path_factory.mktemp("replicas")
    models = tmp_path / "models"
    shutil.copytree(trained_models, models)
    directory = tmp_path / "replicas"
    port = free_port()
    # The interface people use: the shell script, which also does the set-up.
    done = subprocess.run(
        [str(ROOT / "scripts" / "replicas.sh"), "start", "--replicas", "3", "--models",
         str(models), "--port", str(port), "--dir", str(directory), "--", "--poll", "0.2"],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    try:
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"url=http://127.0.0.1:{port}"
        yield Cluster(directory, models, port)
    finally:
        replicas("stop", "--dir", str(directory))


class Load:
    """wrk against nginx until stopped; its JSON tally once it is."""

    def __init__(self, port: int, lua: Path) -> None:
        wrk = tool("wrk", "the load of these tests")
        argv = [wrk, "-t1", f"-c{CONNECTIONS}", "-d600s", "--timeout", "2s", "-s", str(lua)]
        self.process = subprocess.Popen(
            [*argv, f"http://127.0.0.1:{port}"], stdout=subprocess.PIPE, text=True
        )

    def stop(self) -> dict[str, int]:
        self.process.send_signal(signal.SIGINT)  # wrk stops and prints its summary
        out, _ = self.process.communicate(timeout=60)
        found = re.search(r"^JSON (.*)$", out, re.MULTILINE)
        assert found is not None, out
        return dict(json.loads(found.group(1)))


def failed(tally: dict[str, int]) -> int:
    return sum(tally[k] for k in ("connect", "read", "write", "timeout", "status"))


def all_serving(cluster: Cluster, at_least: list[int]) -> bool:
    now = cluster.served()
    return all(n >= floor for n, floor in zip(now, at_least, strict=True))


def test_a_crash_and_a_rolling_restart_under_load(cluster: Cluster, tmp_path: Path) -> None:
    lua = tmp_path / "load.lua"
    lua.write_text(WRK_LUA)

    # A crash: SIGKILL one replica while all three are busy.
    load = Load(cluster.port, lua)
    wait_until(lambda: all_serving(cluster, [200] * 3), timeout=60, what="load on every replica")
    assert replicas("kill", "--replica", "1", "--dir", str(cluster.directory)).returncode == 0
    before = cluster.served()
    wait_until(
        lambda: all(n > b + 1000 for n, b in zip(cluster.served(), before, strict=True) if b >= 0),
        timeout=60,
        what="the two survivors to answer on",
    )
    crash = load.stop()
    print(f"crash of one replica of 3 under wrk (-c{CONNECTIONS}): {crash}")
    assert cluster.status()["replicas"][1]["alive"] is False
    # `status` says so in its exit code too: 3 while a replica is not ready.
    assert replicas("status", "--dir", str(cluster.directory)).returncode == 3
    assert crash["requests"] > 3000
    # At most the crashed replica's requests in flight: one per connection at most, and
    # nginx passes those it can on, so usually none reaches wrk.
    assert failed(crash) <= CONNECTIONS

    # A rolling restart: every replica (the crashed one comes back), one at a time.
    load = Load(cluster.port, lua)
    wait_until(lambda: sum(cluster.served()) > 0, timeout=60, what="load on the survivors")
    done = replicas("restart", "--dir", str(cluster.directory))
    assert done.returncode == 0, done.stderr
    wait_until(lambda: all_serving(cluster, [100] * 3), timeout=60, what="every restarted replica")
    rolling = load.stop()
    print(f"rolling restart of 3 replicas under wrk (-c{CONNECTIONS}): {rolling}")
    assert rolling["requests"] > 3000
    assert failed(rolling) == 0
    assert all(r["ready"] for r in cluster.status()["replicas"])
    assert replicas("status", "--dir", str(cluster.directory)).returncode == 0


def test_every_replica_serves_the_released_version(cluster: Cluster) -> None:
    registry = Registry(cluster.models)
    first = registry.production()
    other = next(v for v in registry.latest_by_model().values() if v != first)
    assert {r["version"] for r in cluster.status()["replicas"]} == {first}
    release = [sys.executable, "-m", "movierec.cli", "release", "--models", str(cluster.models)]
    done = subprocess.run(
        [*release, "--promote", other], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    wait_until(
        lambda: {r["version"] for r in cluster.status()["replicas"]} == {other},
        timeout=30,
        what="every replica to serve the released version",
    )
    with urllib.request.urlopen(f"http://127.0.0.1:{cluster.port}/recommend/7") as response:
        assert response.headers["X-Model-Version"] == other
        assert len(response.read().split(b",")) == 20
