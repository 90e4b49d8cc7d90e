"""bench/bench_online.py at a tiny size, as its user runs it: one command, one JSON object
on stdout, ours equal to the plain DuckDB query on overall conversion."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_online_benchmark_prints_its_figures_and_agrees_with_the_peer(
    tmp_path: Path,
) -> None:
    work = tmp_path / "bench"
    done = subprocess.run(
        [sys.executable, "bench/bench_online.py", "--lines", "200000", "--batch", "20000",
         "--dir", str(work), "--profile", "--repeat", "2"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert not work.exists()  # built in --dir and removed without --keep
    assert result["lines"] == 200_000
    assert result["batches"] == 10
    assert result["appended"] == {
        "lines": 20_000,
        "requests": result["appended"]["requests"],
        "answer_records": result["appended"]["answer_records"],
        "batches": 1,
    }
    assert 0 < result["answer_records"] <= result["requests"] < 200_000
    seconds = result["seconds"]
    for key in ("generation", "full", "incremental_plus_10pct", "rerun_nothing_new", "peer",
                "peer_grown", "scan"):  # fmt: skip
        assert seconds[key] > 0, key
    assert set(result["ratios"]) == {
        "full_to_peer",
        "full_to_scan",
        "incremental_to_peer_grown",
        "incremental_to_full",
    }
    assert all(v > 0 for v in result["peak_rss_gib"].values())
    # Ours equals the peer on the overall counts, after the full run and the reruns.
    assert result["agrees_with_peer"] is True
    overall = result["overall"]
    for ours, peer in (("ours_full", "peer"), ("ours_incremental", "peer_grown")):
        for key in ("requests", "judged", "followed", "conversion@30m", "availability"):
            assert overall[ours][key] == overall[peer][key], (ours, key)
    assert overall["ours_full"]["requests"] == result["requests"]
    assert 0.1 < overall["ours_full"]["conversion@30m"] < 0.9  # a share was followed
    assert overall["ours_incremental"]["requests"] == (
        result["requests"] + result["appended"]["requests"]
    )
    # Each rerun read only what was new.
    read = result["read"]
    assert read["full"]["recommendation_lines"] == result["requests"]
    assert read["full"]["answer_records"] == result["answer_records"]
    assert read["incremental"]["recommendation_lines"] == result["appended"]["requests"]
    assert read["incremental"]["answer_records"] == result["appended"]["answer_records"]
    assert set(read["rerun_nothing_new"].values()) == {0}
    # Attribution was exercised: three versions, both arms of the experiment.
    attribution = result["attribution"]
    assert attribution["versions"] == ["v1", "v2", "v3"]
    assert sorted(arm.rsplit("/", 1)[1] for arm in attribution["arms_judged"]) == [
        "control",
        "treatment",
    ]
    profile = result["profile_of_a_full_run"]
    assert any(step["what"] == "step: update.update (total)" for step in profile["steps"])
