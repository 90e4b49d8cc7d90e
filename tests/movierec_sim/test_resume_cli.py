"""`movierec simulate --state` as the main job runs it: a separate process, stopped with
SIGINT or killed, started again in the same folder. No service listens (every call is
refused at once); the log is clean (no dirt, no late lines), so its times never go back.
The tests wait on what the process has written (checkpoint, high-water mark), never on a
sleep."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

from movierec_sim.resume import StateDir
from movierec_sim.world import DEFAULT_START
from tests.support.commands import movierec
from tests.support.logcheck import parse_time
from tests.support.waiting import wait_until

SITE = (
    "simulate",
    *("--users", "300", "--movies", "100", "--seed", "3"),
    *("--api-port", "0", "--service", "http://127.0.0.1:9"),
    *("--stream", "file://OUT/log", "--state", "OUT/state", "--tick", "300"),
)
START = DEFAULT_START.replace(tzinfo=None)
HOUR = 3600


def start(folder: Path, *args: str) -> subprocess.Popen:
    """The command in the background, its output in files (a full pipe would stall it)."""
    out = (folder / "stdout").open("w")
    err = (folder / "stderr").open("w")
    return subprocess.Popen(
        [sys.executable, "-m", "movierec.cli", *SITE, *args],
        cwd=folder,
        stdout=out,
        stderr=err,
    )


def checkpoint_t(folder: Path) -> int:
    state = StateDir(folder / "OUT/state").load()
    return -1 if state is None else state["t"]


def mark(folder: Path) -> int:
    return StateDir(folder / "OUT/state").read_mark() or 0


def times(lines: list[bytes]) -> list[datetime]:
    return [parse_time(line.split(b",", 1)[0].decode()) for line in lines]


def log_lines(folder: Path) -> list[bytes]:
    return (folder / "OUT/log").read_bytes().split(b"\n")[:-1]


def progress(stderr: str) -> list[dict]:
    return [json.loads(x) for x in stderr.splitlines() if x.startswith('{"job":"simulate"')]


def test_sigint_checkpoints_and_the_next_run_carries_on(tmp_path: Path) -> None:
    # 10 simulated hours a second, a checkpoint each simulated hour.
    proc = start(tmp_path, "--speed", "36000", "--ledger", "OUT/first.json")
    try:
        wait_until(lambda: checkpoint_t(tmp_path) >= 2 * HOUR, what="two simulated hours")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) == 0, (tmp_path / "stderr").read_text()
    finally:
        proc.kill()
    first = json.loads((tmp_path / "OUT/first.json").read_text())
    stopped = first["simulated"]["seconds"]
    state = StateDir(tmp_path / "OUT/state").load()
    assert state is not None and state["t"] == stopped == mark(tmp_path) >= 2 * HOUR
    assert state["log_bytes"] == (tmp_path / "OUT/log").stat().st_size  # flushed first
    before = (tmp_path / "OUT/log").read_bytes()
    assert len(log_lines(tmp_path)) == first["lines"] > 0

    done = movierec(*SITE, "--days", "0.25", "--ledger", "OUT/second.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    resumed_from = (DEFAULT_START + timedelta(seconds=stopped)).isoformat()
    assert progress(done.stderr)[0]["resumed_from"] == resumed_from
    second = json.loads((tmp_path / "OUT/second.json").read_text())
    assert second["simulated"]["seconds"] == stopped + 6 * HOUR  # --days: days more
    assert second["resumed"] == [
        {
            "from_checkpoint_t": stopped,
            "skipped_to_t": stopped,
            "lines_after_checkpoint": 0,
            "late_lines_dropped": 0,
        }
    ]
    after = (tmp_path / "OUT/log").read_bytes()
    assert after.startswith(before) and len(after) > len(before)
    lines = log_lines(tmp_path)
    assert second["lines"] == len(lines)
    old, new = times(lines[: first["lines"]]), times(lines[first["lines"] :])
    boundary = START + timedelta(seconds=stopped)
    # The two runs' simulated spans do not overlap: no period is logged twice.
    assert max(old) < boundary <= min(new)
    assert max(new) < boundary + timedelta(hours=6)
    assert old + new == sorted(old + new)


def test_sigkill_then_resume_never_goes_back_in_time(tmp_path: Path) -> None:
    # A checkpoint only each simulated day: killed a few hours in, the last is the first.
    proc = start(tmp_path, "--speed", "36000", "--checkpoint-every", "86400")
    try:
        wait_until(lambda: mark(tmp_path) >= 4 * HOUR, what="four simulated hours logged")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    state = StateDir(tmp_path / "OUT/state").load()
    assert state is not None
    killed_at = mark(tmp_path)
    before = (tmp_path / "OUT/log").read_bytes()
    after_checkpoint = before[state["log_bytes"] :].count(b"\n")
    assert killed_at > state["t"] and after_checkpoint > 0  # the skip path, not a clean stop

    done = movierec(*SITE, "--days", "0.25", "--ledger", "OUT/ledger.json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert progress(done.stderr)[0]["skipped_to"] == (
        (DEFAULT_START + timedelta(seconds=killed_at)).isoformat()
    )
    ledger = json.loads((tmp_path / "OUT/ledger.json").read_text())
    torn = not before.endswith(b"\n")
    assert ledger["resumed"] == [
        {
            "from_checkpoint_t": state["t"],
            "skipped_to_t": killed_at,
            "lines_after_checkpoint": after_checkpoint + torn,
            "late_lines_dropped": 0,
        }
    ]
    after = (tmp_path / "OUT/log").read_bytes()
    assert after.startswith(before)  # no earlier line altered
    lines = log_lines(tmp_path)
    assert ledger["lines"] == len(lines) and ledger["unaccounted"] == after_checkpoint + torn
    kept = before.count(b"\n") + torn
    old, new = times(lines[:kept]), times(lines[kept:])
    boundary = START + timedelta(seconds=killed_at)
    assert new and max(old) < boundary <= min(new)
    assert old + new == sorted(old + new)


def test_another_world_is_refused_naming_the_field(tmp_path: Path) -> None:
    done = movierec(*SITE, "--days", "0.05", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    checkpoint = (tmp_path / "OUT/state/checkpoint.pkl").read_bytes()
    log = (tmp_path / "OUT/log").read_bytes()
    other = [*SITE, "--days", "0.05"]
    other[other.index("--users") + 1] = "301"
    done = movierec(*other, cwd=tmp_path)
    assert done.returncode == 2
    assert "users: 300 in the state, 301 given" in done.stderr, done.stderr
    done = movierec(*SITE, "--days", "0.05", "--start", "2025-03-01", "--tick", "600", cwd=tmp_path)
    assert done.returncode == 2
    assert "start: " in done.stderr and "tick_seconds: 300" in done.stderr, done.stderr
    # Refused before anything ran: the state and the log are as they were.
    assert (tmp_path / "OUT/state/checkpoint.pkl").read_bytes() == checkpoint
    assert (tmp_path / "OUT/log").read_bytes() == log
