"""The supervisor with real child processes: order, readiness, restarts, stops."""

from __future__ import annotations

import signal
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from movierec.supervision.process import ChildSpec
from movierec.supervision.supervisor import Supervisor
from tests.support.ports import free_port

# Crashes (status 3) on its first run; then runs until SIGINT and exits 0.
_UNTIL_SIGINT = """
import pathlib, signal, sys
marker = sys.argv[1]
if not pathlib.Path(marker).exists():
    pathlib.Path(marker).write_text("crashed once")
    sys.exit(3)
signal.signal(signal.SIGINT, lambda *_: sys.exit(0))
pathlib.Path(marker + ".up").write_text("listening for SIGINT")
signal.pause()
"""
_IGNORES_SIGINT = """
import pathlib, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
pathlib.Path(sys.argv[1]).write_text("deaf now")
signal.pause()
"""


def python(code: str, *args: str) -> list[str]:
    return [sys.executable, "-c", code, *args]


def until(condition: Callable[[], bool], supervisor: Supervisor, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        supervisor.watch()
        time.sleep(0.05)  # a poll of the condition, which is what is waited for


def events(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def test_children_start_in_order_each_ready_before_the_next(tmp_path: Path) -> None:
    port = free_port()
    web = ChildSpec(
        "web",
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        tmp_path / "web.log",
        ready_url=f"http://127.0.0.1:{port}/",
    )
    # The second child asks the first at start, and exits 1 if nobody answers.
    probe = (
        "import pathlib, signal, sys, urllib.request\n"
        "signal.signal(signal.SIGINT, lambda *_: sys.exit(0))\n"
        f"urllib.request.urlopen('http://127.0.0.1:{port}/', timeout=2)\n"
        "pathlib.Path(sys.argv[1]).write_text('asked')\n"
        "signal.pause()"
    )
    asked = tmp_path / "asked"
    user = ChildSpec("user", python(probe, str(asked)), tmp_path / "user.log")
    supervisor = Supervisor([web, user], tmp_path / "events.jsonl", lambda _: None)
    supervisor.start(lambda: False)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            assert response.status == 200
        until(asked.exists, supervisor)  # the user found the web child answering
        assert all(child.running for child in supervisor.children.values())
    finally:
        statuses = supervisor.stop(["user", "web"])
    assert statuses["user"] == 0
    log = events(tmp_path / "events.jsonl")
    assert [(e["event"], e["process"]) for e in log] == [
        ("start", "web"), ("start", "user"), ("stopped", "user"), ("stopped", "web"),
    ]  # fmt: skip


def test_a_crashed_child_is_restarted_and_the_crash_is_logged(tmp_path: Path) -> None:
    spec = ChildSpec("worker", python(_UNTIL_SIGINT, str(tmp_path / "m")), tmp_path / "w.log")
    said: list[dict] = []
    supervisor = Supervisor([spec], tmp_path / "events.jsonl", said.append)
    supervisor.start(lambda: False)
    until((tmp_path / "m.up").exists, supervisor)
    assert supervisor.restarts == 1
    assert supervisor.children["worker"].starts == 2
    supervisor.stop(["worker"])
    kinds = [(e["event"], e.get("status")) for e in events(tmp_path / "events.jsonl")]
    assert kinds == [("start", None), ("crashed", 3), ("restart", None), ("stopped", 0)]
    assert said == events(tmp_path / "events.jsonl")  # what is shown is what is kept


def test_a_child_that_finishes_its_work_is_not_restarted(tmp_path: Path) -> None:
    done = ChildSpec("batch", python("pass"), tmp_path / "b.log", finishes=True)
    supervisor = Supervisor([done], tmp_path / "events.jsonl", lambda _: None)
    supervisor.start(lambda: False)
    until(lambda: supervisor.finished("batch"), supervisor)
    supervisor.watch()
    assert supervisor.restarts == 0
    assert [e["event"] for e in events(tmp_path / "events.jsonl")] == ["start", "finished"]


def test_a_child_that_stays_up_once_done_is_finished_and_still_stopped_in_order(
    tmp_path: Path,
) -> None:
    """The done URL answers 404 until the work is done (here: a file appears), then 200."""
    port, served = free_port(), tmp_path / "served"
    served.mkdir()
    server = [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    spec = ChildSpec(
        "site",
        [*server, "--directory", str(served)],
        tmp_path / "site.log",
        ready_url=f"http://127.0.0.1:{port}/",
        done_url=f"http://127.0.0.1:{port}/done",
    )
    supervisor = Supervisor([spec], tmp_path / "events.jsonl", lambda _: None)
    supervisor.start(lambda: False)
    try:
        supervisor.watch()
        assert not supervisor.finished("site")  # answered, but 404: not done
        (served / "done").write_text("yes")
        until(lambda: supervisor.finished("site"), supervisor)
        assert supervisor.children["site"].running  # finished, and still serving
    finally:
        supervisor.stop(["site"])
    assert [e["event"] for e in events(tmp_path / "events.jsonl")] == [
        "start", "finished", "stopped",
    ]  # fmt: skip
    assert not supervisor.children["site"].running


def test_a_child_deaf_to_sigint_is_killed_after_its_grace(tmp_path: Path) -> None:
    ignoring = tmp_path / "ignoring"
    deaf = ChildSpec("deaf", python(_IGNORES_SIGINT, str(ignoring)), tmp_path / "d.log", grace=0.5)
    supervisor = Supervisor([deaf], tmp_path / "events.jsonl", lambda _: None)
    supervisor.start(lambda: False)
    until(ignoring.exists, supervisor)
    assert supervisor.stop(["deaf"]) == {"deaf": -signal.SIGKILL}


def test_a_child_that_exits_before_it_is_ready_is_an_error_naming_its_log(
    tmp_path: Path,
) -> None:
    broken = ChildSpec(
        "broken",
        python("import sys; print('no config'); sys.exit(2)"),
        tmp_path / "broken.log",
        ready_url=f"http://127.0.0.1:{free_port()}/",
    )
    supervisor = Supervisor([broken], tmp_path / "events.jsonl", lambda _: None)
    with pytest.raises(RuntimeError, match=r"broken exited with status 2 .*broken\.log"):
        supervisor.start(lambda: False)
    supervisor.stop([])
    assert "no config" in (tmp_path / "broken.log").read_text()
