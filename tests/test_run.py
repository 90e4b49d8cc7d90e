"""The main job: end to end, small (the site, ingestion, training, serving and swaps), and
safe with its folder: it never deletes what it did not make."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from movierec.run import MARKER, RUN_ENTRIES, RunDirError, prepare_run_dir, wait_for
from movierec.training.pipeline import DEFAULT_MODELS
from tests.support.commands import movierec

# The smallest world a whole run finishes in within seconds: one round, no search.
TINY = (
    "--users", "60", "--movies", "30", "--days", "2", "--rounds", "1", "--budget", "0",
    "--api-port", "0", "--service-port", "0", "--quiet",
)  # fmt: skip


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its bytes (None for folders)."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def test_the_main_job_runs_end_to_end(tmp_path: Path) -> None:
    done = movierec(
        "run", "--users", "400", "--movies", "100", "--days", "8", "--rounds", "2",
        "--dir", str(tmp_path / "data"), "--api-port", "0", "--service-port", "0",
        "--budget", "3", "--quiet",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout)
    first, second = summary["rounds"]
    assert second["lines"] > first["lines"] > 10_000
    assert first["production"] != second["production"]
    assert set(summary["offline"]) == set(DEFAULT_MODELS)
    days = summary["online"]
    # No model in the first round: every call failed; then the service's lists were followed.
    assert all(d["service_share"] == 0 for d in days if d["day"] < 3)
    assert any(d["service_share"] > 0.1 for d in days if d["day"] >= 5)
    ledger = json.loads(Path(summary["reports"][0]).read_text())
    assert set(ledger["recommendation_calls"]["by_status"]) >= {"200", "503"}
    # Between the floor and the ceiling: the oracle's lists are the best possible.
    bounds = summary["against_bounds"]
    assert bounds["production_model"] in summary["offline"]
    assert bounds["ndcg@20_vs_popularity"] > 0
    assert 0 < bounds["online_share_of_oracle"] <= 1
    # The same run measured from the log alone: the 503s before any model, then versions.
    from_log = summary["online_from_log"]
    assert from_log["unattributed"]["availability"] == 0
    assert any(
        (f["conversion@30m"] or 0) > 0.05 for v, f in from_log.items() if v != "unattributed"
    )
    for report in summary["reports"]:
        assert Path(report).exists()
    assert (tmp_path / "data" / MARKER).is_file()


def test_a_folder_holding_other_files_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    (home / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 a cat")
    (home / "notes.txt").write_text("keep me")
    (home / "store").mkdir()  # named like a run's entry, but no run made it
    (home / "store" / "mine.parquet").write_bytes(b"PAR1")
    before = snapshot(home)
    done = movierec("run", "--dir", str(home), *TINY)
    assert done.returncode != 0
    assert f"--dir {home} already holds files that no run made" in done.stderr
    assert snapshot(home) == before  # nothing deleted, changed or added (no marker either)


def test_a_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.write_text("not a folder")
    done = movierec("run", "--dir", str(target), *TINY)
    assert done.returncode != 0 and "is not a folder" in done.stderr
    assert target.read_text() == "not a folder"


def test_zero_rounds_or_days_are_refused_with_exit_2(tmp_path: Path) -> None:
    done = movierec("run", "--dir", str(tmp_path / "data"), "--rounds", "0")
    assert done.returncode == 2
    assert "--rounds 0: Input should be greater than or equal to 1" in done.stderr
    done = movierec("run", "--dir", str(tmp_path / "data"), "--days", "0")
    assert done.returncode == 2 and "--days 0.0: Input should be greater than 0" in done.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was made


def test_a_previous_runs_folder_is_reused_and_only_its_entries_replaced(tmp_path: Path) -> None:
    root = tmp_path / "data"
    first = movierec("run", "--dir", str(root), *TINY)
    assert first.returncode == 0, first.stderr[-3000:]
    (root / "notes.txt").write_text("mine")
    (root / "log").write_bytes(b"a stale line that must not survive\n")
    again = movierec("run", "--dir", str(root), *TINY)
    assert again.returncode == 0, again.stderr[-3000:]
    assert (root / "notes.txt").read_text() == "mine"
    lines = (root / "log").read_bytes().split(b"\n")[:-1]
    summary = json.loads(again.stdout)
    assert len(lines) == summary["rounds"][-1]["lines"] > 0  # a fresh log, not appended to
    assert b"a stale line" not in (root / "log").read_bytes()
    assert json.loads((root / "quality.json").read_text())["lines_read"] == len(lines)


def test_reuse_removes_a_runs_links_not_what_they_point_to(tmp_path: Path) -> None:
    root = tmp_path / "data"
    prepare_run_dir(root)
    assert (root / MARKER).is_file()
    elsewhere = tmp_path / "precious"
    elsewhere.mkdir()
    (elsewhere / "data.bin").write_bytes(b"precious")
    (root / "store").symlink_to(elsewhere, target_is_directory=True)
    (root / "models").mkdir()
    (root / "models" / "old").write_text("old model")
    (root / "ledger.json").write_text("{}")
    (root / "mine.txt").write_text("not a run's")
    prepare_run_dir(root)
    assert sorted(p.name for p in root.iterdir()) == [MARKER, "mine.txt"]
    assert (elsewhere / "data.bin").read_bytes() == b"precious"
    assert set(RUN_ENTRIES) >= {"log", "store", "models", "ledger.json"}


def test_an_empty_folder_is_taken_and_a_forged_marker_is_not(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    prepare_run_dir(empty)
    assert (empty / MARKER).is_file()
    forged = tmp_path / "forged"
    forged.mkdir()
    (forged / MARKER).write_text("not json")
    (forged / "store").mkdir()
    with pytest.raises(RunDirError, match="no run made"):
        prepare_run_dir(forged)
    assert (forged / "store").is_dir()


def test_waiting_gives_up_loudly_naming_what_and_how_long() -> None:
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"waiting for the swap to model v2 after 0\.3 s"):
        wait_for(lambda: False, "the swap to model v2", timeout=0.3, poll=0.05)
    assert time.monotonic() - started >= 0.3
    wait_for(lambda: True, "nothing", timeout=0.0)  # a condition already true returns
