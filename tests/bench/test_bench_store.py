"""bench/bench_store.py at a tiny size, as its user runs it: one command, one JSON object on
stdout, a sample every few batches with commit time, files and a reader's first query."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_store_benchmark_prints_commit_time_and_files_over_the_batches(
    tmp_path: Path,
) -> None:
    work = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, "bench/bench_store.py", "--days", "1", "--batch-seconds", "3600",
         "--lines", "200", "--samples", "4", "--dir", str(work)],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    compression = result["compression"]
    assert compression["batches"] == 24  # a day of one batch per site hour
    assert compression["site_lines_per_batch"] == 3_600_000
    assert compression["follow_mode_commits_a_week"] == 604_800
    assert result["lines"] == 24 * 200
    # 1% of the lines are dirt: the rest is stored, every kind of it.
    assert 0.95 * result["lines"] < sum(result["stored"].values()) < result["lines"]
    assert all(n > 0 for n in result["stored"].values())
    samples = result["samples"]
    assert [s["batches"] for s in samples] == [6, 12, 18, 24]
    for sample in samples:
        assert 0 < sample["commit_ms_median"] <= sample["commit_ms_max"]
        assert sample["files"] > 0 and sample["connect_and_count_ms"] > 0
    assert result["files"]["last_sample"] == samples[-1]["files"]
    # What the reader counts is in the store that was left behind (kept by --dir).
    assert (work / "store" / "state" / "checkpoint.json").exists()
    progress = [line for line in done.stderr.splitlines() if line.startswith("[bench_store]")]
    assert len(progress) >= 5
