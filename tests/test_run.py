"""The main job end to end, small: the site, ingestion, training, serving and swaps."""

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
            "400",
            "--movies",
            "100",
            "--days",
            "8",
            "--rounds",
            "2",
            "--dir",
            str(tmp_path / "data"),
            "--api-port",
            "0",
            "--service-port",
            "0",
            "--budget",
            "3",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    first, second = summary["rounds"]
    assert second["lines"] > first["lines"] > 10_000
    assert first["production"] != second["production"]
    assert set(summary["offline"]) == {"popularity", "als", "itemknn", "coldstart"}
    days = summary["online"]
    # No model in the first round: every call failed; then the service's lists were followed.
    assert all(d["service_share"] == 0 for d in days if d["day"] < 3)
    assert any(d["service_share"] > 0.1 for d in days if d["day"] >= 5)
    ledger = json.loads(Path(summary["reports"][0]).read_text())
    assert set(ledger["recommendation_calls"]["by_status"]) >= {"200", "503"}
    for report in summary["reports"]:
        assert Path(report).exists()
