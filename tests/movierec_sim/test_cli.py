"""The simulator from the command line, as people (and the acceptance check) run it."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

from movierec.stream import open_source
from movierec_sim.world import World, WorldConfig
from tests.support.commands import movierec
from tests.support.logcheck import classify
from tests.support.ports import free_port
from tests.support.waiting import wait_until


def test_simulate_writes_the_log_and_ledger(tmp_path: Path) -> None:
    done = movierec(
        "simulate",
        "--users",
        "2000",
        "--movies",
        "500",
        "--seed",
        "7",
        "--events",
        "200000",
        "--stream",
        "file://OUT/log",
        "--faults",
        "0.05",
        "--ledger",
        "OUT/ledger.json",
        "--api-port",
        "0",
        "--service",
        "http://127.0.0.1:9",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    ledger = json.loads((tmp_path / "OUT/ledger.json").read_text())
    lines = (tmp_path / "OUT/log").read_bytes().split(b"\n")[:-1]
    assert len(lines) == ledger["lines"] == 200_000
    faulty = {n for numbers in ledger["fault_lines"].values() for n in numbers}
    movies = World(WorldConfig(users=2000, movies=500, seed=7)).movie_index
    kinds = {"watch": 0, "rate": 0, "recommendation": 0}
    for number, raw in enumerate(lines, start=1):
        if number not in faulty:
            kinds[classify(raw, movies)[0]] += 1
    assert kinds == ledger["clean"]
    summary = json.loads(done.stdout)
    assert summary["lines"] == 200_000 and summary["faults"] == ledger["faults"]
    last = [json.loads(line) for line in done.stderr.splitlines() if '"job":"simulate"' in line][-1]
    assert last["lines"] == 200_000


def test_a_lingering_site_keeps_its_api_up_after_the_last_day_until_stopped(
    tmp_path: Path,
) -> None:
    port = free_port()
    site = subprocess.Popen(
        [sys.executable, "-m", "movierec.cli", "simulate", "--users", "200", "--movies", "50",
         "--events", "2000", "--stream", f"file://{tmp_path / 'log'}", "--ledger",
         str(tmp_path / "ledger.json"), "--api-port", str(port), "--service",
         "http://127.0.0.1:9", "--linger", "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    finished = f"http://127.0.0.1:{port}/_site/finished"
    try:
        wait_until(lambda: answers(finished) == 200, timeout=120, what="the site to finish")
        ledger = json.loads((tmp_path / "ledger.json").read_bytes())
        assert ledger["lines"] == 2000  # written before it lingers
        movie = next(iter(World(WorldConfig(users=200, movies=50)).movie_index))
        assert answers(f"http://127.0.0.1:{port}/movie/{movie}") == 200
        assert site.poll() is None
    finally:
        site.send_signal(signal.SIGTERM)
        out, err = site.communicate(timeout=60)
    assert site.returncode == 0, err
    assert json.loads(out)["lines"] == 2000


def answers(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def test_bad_options_get_a_clear_error(tmp_path: Path) -> None:
    done = movierec("simulate", "--fault", "gremlins=0.1", "--api-port", "0", cwd=tmp_path)
    assert done.returncode == 2 and "unknown fault kind 'gremlins'" in done.stderr
    done = movierec(
        "simulate", "--stream", "ftp://x", "--events", "1", "--api-port", "0", cwd=tmp_path
    )
    assert done.returncode != 0 and "stream URL" in done.stderr


@pytest.mark.kafka
def test_simulate_to_the_real_broker_puts_every_line_on_the_topic(
    tmp_path: Path, kafka_bootstrap: str
) -> None:
    topic = f"movielog-{uuid.uuid4().hex[:8]}"
    args = [
        "simulate",
        "--users",
        "2000",
        "--movies",
        "500",
        "--seed",
        "7",
        "--events",
        "50000",
        "--faults",
        "0.05",
        "--api-port",
        "0",
        "--service",
        "http://127.0.0.1:9",
    ]
    done = movierec(
        *args,
        "--stream",
        f"kafka://{kafka_bootstrap}/{topic}",
        "--ledger",
        "kafka.json",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    local = movierec(*args, "--stream", "file://local.log", "--ledger", "local.json", cwd=tmp_path)
    assert local.returncode == 0, local.stderr
    ledger = json.loads((tmp_path / "kafka.json").read_text())
    local_ledger = json.loads((tmp_path / "local.json").read_text())
    assert ledger["fault_lines"] == local_ledger["fault_lines"]
    source = open_source(f"kafka://{kafka_bootstrap}/{topic}", group=f"test-{topic}")
    messages: list[bytes] = []
    try:
        while not (messages and source.at_end()):
            messages.extend(source.read(100_000, timeout=2.0).values)
    finally:
        source.close()
    assert len(messages) == ledger["lines"] == 50_000
    local_lines = (tmp_path / "local.log").read_bytes().split(b"\n")[:-1]
    # The same lines, recommendation latencies (and dirt made of those lines) aside.
    faulty = {n for numbers in ledger["fault_lines"].values() for n in numbers}
    differ = [
        n
        for n, (a, b) in enumerate(zip(messages, local_lines, strict=True), start=1)
        if a != b and not (n in faulty or b"recommendation request" in a)
    ]
    assert differ == []
