"""`movierec ingest` as the acceptance check runs it."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from movierec.logformat.reference import REASONS
from movierec_sim.api import SiteApiServer
from tests.support.simulated import SimulatedLog


def test_ingest_writes_the_quality_report(
    tmp_path: Path, dirty_log: SimulatedLog, site_api: SiteApiServer
) -> None:
    (tmp_path / "OUT").mkdir()
    shutil.copy(dirty_log.path, tmp_path / "OUT" / "log")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "movierec.cli",
            "ingest",
            "--source",
            "file://OUT/log",
            "--store",
            "OUT/store",
            "--report",
            "OUT/quality.json",
            "--api",
            site_api.url,
            "--api-rate-limit",
            "2000",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "OUT" / "quality.json").read_text())
    ledger = dirty_log.ledger
    assert report["lines_read"] == ledger["lines"]
    assert report["stored"] == ledger["clean"]
    assert report["duplicates"] == ledger["faults"]["duplicate"]
    assert sum(report["rejected"].values()) == ledger["expected_ingest"]["rejected"]
    assert set(report["rejected"]) <= set(REASONS)
    assert json.loads(done.stdout)["stored"] == report["stored"]
    assert any(w["check"] == "schema" for w in report["quality"]["warnings"])
    # A second run finds nothing new and changes nothing.
    again = subprocess.run(
        [
            sys.executable,
            "-m",
            "movierec.cli",
            "ingest",
            "--source",
            "file://OUT/log",
            "--store",
            "OUT/store",
            "--api",
            site_api.url,
            "--quiet",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert json.loads(again.stdout)["stored"] == report["stored"]


def test_a_bad_source_is_a_clear_error(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "movierec.cli",
            "ingest",
            "--source",
            "http://x/y",
            "--store",
            str(tmp_path / "s"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and "file://PATH or kafka://" in done.stderr


def test_a_broker_nobody_runs_is_a_clear_error(tmp_path: Path) -> None:
    """No traceback and no store changed: one line naming the stream, exit 1, so whatever
    restarts ingestion (the supervisor, a container's policy) resumes at the checkpoint."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # free, and nothing listens on it once closed
    source = f"kafka://127.0.0.1:{port}/movielog"
    done = subprocess.run(
        [sys.executable, "-m", "movierec.cli", "ingest", "--source", source,
         "--store", str(tmp_path / "s"), "--follow", "--quiet"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1
    assert f"the stream {source} is unreachable" in done.stderr
    assert "Traceback" not in done.stderr
