"""`kill -9` at random moments, then restart: in the end every event is stored exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from movierec.store.events import EventStore
from movierec_sim.api import SiteApiServer
from tests.support.simulated import SimulatedLog, assert_matches_ledger

KILLS = 3  # each costs a fresh process and a restart (~10 s); five took 62 s of CI


def ingest_command(source: str, store: Path, api: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "movierec.cli",
        "ingest",
        "--source",
        source,
        "--store",
        str(store),
        "--api",
        api,
        "--api-rate-limit",
        "2000",
        "--quiet",
        *extra,
    ]


def committed(store: Path) -> int:
    checkpoint = EventStore(store).checkpoint()
    return checkpoint.seq if checkpoint else 0


def kill_while_ingesting(
    command: list[str],
    store: Path,
    rng: np.random.Generator,
    producing: subprocess.Popen | None = None,
) -> int:
    """Start ingestion until KILLS SIGKILLs have landed, each at a random moment once it is
    busy (past its first new commit); returns how many landed. A run that caught up and
    ended on its own before its moment is not a kill: it is started again, unless the
    producer (if any) is done too, since then nothing is left to be killed over."""
    landed = 0
    for _ in range(3 * KILLS):  # bounded: a run that always ends first fails the caller
        before = committed(store)
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while committed(store) == before and process.poll() is None:
            assert time.monotonic() < deadline, "ingestion made no progress"
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 0.4)))
        if process.poll() is None:
            os.kill(process.pid, signal.SIGKILL)
            landed += 1
        process.wait()
        if landed == KILLS:
            break
        if producing is not None and producing.poll() is not None and process.returncode == 0:
            break
    return landed


def finish(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    tmp_path: Path, dirty_log: SimulatedLog, site_api: SiteApiServer
) -> None:
    store = tmp_path / "store"
    report_path = tmp_path / "quality.json"
    command = ingest_command(dirty_log.url, store, site_api.url, "--batch-lines", "4000")
    assert kill_while_ingesting(command, store, np.random.default_rng(1)) == KILLS
    finish([*command, "--report", str(report_path)])
    assert_matches_ledger(json.loads(report_path.read_text()), dirty_log.ledger)


@pytest.mark.kafka
@pytest.mark.slow
def test_sigkill_during_a_live_kafka_stream(
    tmp_path: Path, kafka_bootstrap: str, site_api: SiteApiServer
) -> None:
    topic = f"movielog-{uuid.uuid4().hex[:8]}"
    source = f"kafka://{kafka_bootstrap}/{topic}"
    ledger_path = tmp_path / "ledger.json"
    producer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "movierec.cli",
            "simulate",
            "--users",
            "2000",
            "--movies",
            "500",
            "--seed",
            "7",
            "--events",
            "500000",
            "--faults",
            "0.05",
            "--stream",
            source,
            "--ledger",
            str(ledger_path),
            "--api-port",
            "0",
            "--service",
            "http://127.0.0.1:9",
            "--quiet",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    store = tmp_path / "store"
    command = ingest_command(
        source, store, site_api.url, "--batch-lines", "20000", "--group", f"crash-{topic}"
    )
    try:
        landed = kill_while_ingesting(command, store, np.random.default_rng(2), producer)
    finally:
        assert producer.wait(timeout=600) == 0, producer.stderr.read() if producer.stderr else ""
    assert landed == KILLS
    report_path = tmp_path / "quality.json"
    finish([*command, "--report", str(report_path)])
    ledger = json.loads(ledger_path.read_text())
    assert_matches_ledger(json.loads(report_path.read_text()), ledger)
