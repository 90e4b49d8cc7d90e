"""The main job end to end, small."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def test_the_main_job_runs_end_to_end(tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "movierec.cli",
            "run",
            "--users",
            "300",
            "--movies",
            "80",
            "--days",
            "6",
            "--dir",
            str(tmp_path / "data"),
            "--api-port",
            "0",
            "--service-port",
            "9",
            "--budget",
            "5",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    assert summary["simulated"]["lines"] > 10_000
    assert sum(summary["ingested"]["stored"].values()) > 0
    assert set(summary["offline"]) == {"popularity", "als", "itemknn", "coldstart"}
    for report in summary["reports"]:
        assert Path(report).exists()
