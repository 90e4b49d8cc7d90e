"""bench/bench_availability.py at a tiny size, as its user runs it: one command, one JSON
object; the site's requests all accounted for, and both deliberately bad candidates
put on canary and aborted, never promoted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_availability_benchmark_aborts_the_bad_candidates(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "bench/bench_availability.py", "--days", "4", "--warmup-days", "1",
         "--speed", "8000", "--users", "2000", "--movies", "100", "--budget", "0",
         "--retrain-every", "1000", "--canary-requests", "200", "--bad-after", "2",
         "--bad-every", "2", "--dir", str(tmp_path / "run")],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["requests"] > 500
    assert result["answered_in_time"] + result["failed"] == result["requests"]
    assert result["availability"] == round(result["answered_in_time"] / result["requests"], 6)
    assert result["warm_up"]["production"] is not None
    assert sum(result["failed_by_version"].values()) == result["failed"]
    assert 0 <= result["failed_outside_injected_canaries"] <= result["failed"]
    # Retraining was held off (--retrain-every 1000), so the canary slot was the bench's.
    injected = {bad["kind"]: bad for bad in result["injected"]}
    assert set(injected) == {"random", "slow"}
    assert {bad["decision"] for bad in injected.values()} == {"abort"}
    assert all(bad["decided_by"] == "canary" for bad in injected.values())
    assert "p99" in injected["slow"]["reason"] or "timeout" in injected["slow"]["reason"]
    decisions = [(r["decision"], r["decided_by"]) for r in result["releases"]]
    assert ("promote", "train") in decisions and decisions.count(("abort", "canary")) == 2
    assert result["conversion_by_day"]
