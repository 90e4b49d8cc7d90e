"""The main job: separate supervised processes running until stopped, a crashed one
restarted, Ctrl-C stopping everything without losing or doubling an event, a second run
resuming the first; and safe with its folder: it never deletes what it did not make."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from movierec.registry.experiments import answer_log_dir
from movierec.registry.versions import Registry
from movierec.run.config import MARKER, prepare_run_dir
from movierec.store.events import EventStore
from tests.support.commands import movierec

# A site busy enough that a few hundred calls come in a simulated day, run fast enough
# that a simulated day takes about half a real minute.
WORLD = ("--users", "2000", "--movies", "80", "--seed", "5", "--speed", "3000")
FAST_RELEASES = (
    "--retrain-every", "10", "--min-events", "1000", "--budget", "0",
    "--canary-share", "0.3", "--canary-min-requests", "40", "--canary-max-requests", "150",
    "--canary-min-latency-requests", "20",
)  # fmt: skip
ANY_PORTS = ("--api-port", "0", "--service-port", "0", "--monitor-port", "0")
ANY_PORTS += ("--metrics-port", "0", "--quiet")
DEADLINE = 300.0


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under root with its bytes (None for folders)."""
    return {
        str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
        for p in sorted(root.rglob("*"))
    }


def until(condition: Callable[[], Any], what: str, process: subprocess.Popen) -> Any:
    deadline = time.monotonic() + DEADLINE
    while not (value := condition()):
        assert process.poll() is None, f"the run exited ({process.returncode}) before {what}"
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.25)  # polling the condition itself
    return value


def events(root: Path) -> list[dict[str, Any]]:
    path = root / "logs" / "supervisor.jsonl"
    return [orjson.loads(line) for line in path.read_bytes().splitlines()] if path.exists() else []


def canary_decided(models: Path) -> bool:
    if not (models / "registry.json").exists():
        return False
    return any(r.decided_by == "canary" for r in Registry(models).releases())


def answered_by(service: str, user: int) -> str | None:
    """The model version that answered user's request, None unless the answer was a 200."""
    status, version = recommend(service, user)
    return version if status == 200 else None


def recommend(service: str, user: int) -> tuple[int, str | None]:
    try:
        with urllib.request.urlopen(f"{service}/recommend/{user}", timeout=2) as response:
            return response.status, response.headers.get("X-Model-Version")
    except urllib.error.HTTPError as error:
        return error.code, None
    except OSError:  # not listening yet
        return 0, None


def test_runs_until_stopped_restarts_a_crash_and_resumes_losing_nothing(tmp_path: Path) -> None:
    root, models = tmp_path / "run", tmp_path / "run" / "models"
    argv = [sys.executable, "-m", "movierec.cli", "run", "--dir", str(root), *WORLD]
    argv += [*FAST_RELEASES, *ANY_PORTS]
    first = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        where = until(lambda: _read(root / "run.json"), "run.json", first)
        service = where["service"]
        # The service answers from a trained model.
        version = until(
            lambda: answered_by(service, 1),
            "an answer from a trained model",
            first,
        )
        assert version in {v["version"] for v in Registry(models).read()["versions"]}
        # A crashed process is restarted, and the restart is logged.
        ingest_pid = next(e["pid"] for e in events(root) if e.get("process") == "ingest")
        os.kill(ingest_pid, signal.SIGKILL)
        until(
            lambda: any(e["event"] == "restart" and e["process"] == "ingest" for e in events(root)),
            "the ingestion's restart",
            first,
        )
        # Retraining goes on, and a canary is decided on live traffic.
        until(lambda: canary_decided(models), "a canary decision", first)
        first.send_signal(signal.SIGINT)
        assert first.wait(120) == 0, first.stderr.read().decode()[-3000:] if first.stderr else ""
    finally:
        if first.poll() is None:
            first.kill()
    assert json.loads(first.stdout.read())["stopped"]["serve"] == 0  # type: ignore[union-attr]
    crashed = [e for e in events(root) if e["event"] == "crashed"]
    assert [(e["process"], e["status"]) for e in crashed] == [("ingest", -signal.SIGKILL)]
    releases = Registry(models).releases()
    assert sum(r.decided_by == "canary" and r.decision in ("promote", "abort") for r in releases)
    production, stopped_at = Registry(models).production(), time.time()

    # A second, bounded run resumes the same folder and waits until every line is stored.
    second = movierec(
        "run", "--dir", str(root), *WORLD, *FAST_RELEASES, *ANY_PORTS, "--days", "0.3"
    )
    assert second.returncode == 0, second.stderr[-3000:]
    summary = json.loads(second.stdout)
    assert summary["resumed"] is True and summary["caught_up"] is True
    # The service came back with the model it had: its first answers after the restart
    # come from the production version of the first run (or the canary it was trying).
    after = answers_after(models, stopped_at)
    assert after, "the resumed run answered nothing"
    first_answer = after[0]
    if first_answer["arm"] is None or first_answer["arm"] == "control":
        assert first_answer["version"] == production
    else:  # a canary still running when the first run stopped goes on where it was
        assert first_answer["version"] in {r.evidence.get("candidate") for r in releases}

    # Any answer is explained from the run's folder: its version and what made it.
    last = after[-1]
    explained = movierec(
        "provenance", "--dir", str(root), "--user", str(last["user"]), "--time", last["time"]
    )
    assert explained.returncode == 0, explained.stderr
    found = json.loads(explained.stdout)
    assert found["version"] == last["version"] and found["answer"]["time"] == last["time"]
    made = Registry(models).provenance(last["version"])
    assert found["data"] == made["data"] and found["code"] == made["code"]

    # Nothing lost, nothing doubled: what the store holds is what the site's ledger says
    # it wrote, over both runs, the SIGKILL and the SIGINT.
    ledger = orjson.loads((root / "site" / "ledger.json").read_bytes())
    counters = EventStore(root / "store").checkpoint().counters  # type: ignore[union-attr]
    assert counters["lines_read"] == ledger["expected_ingest"]["lines_read"]
    assert counters["duplicates"] == ledger["faults"]["duplicate"]
    # What the store's views hold: events of movies the catalogue later disowned are
    # counted stored at ingestion and rejected since, so the views are the measure.
    held = EventStore(root / "store").counts()
    assert held["stored"] == ledger["clean"]
    assert held["rejected"]["unknown_movie"] == ledger["faults"]["unknown_movie"]
    assert sum(held["rejected"].values()) == ledger["expected_ingest"]["rejected"]
    assert summary["availability"] is not None and summary["availability"] > 0.5


def answers_after(models: Path, moment: float) -> list[dict[str, Any]]:
    """The answer log's records after `moment` (Unix seconds), oldest first."""
    records = [
        orjson.loads(line)
        for path in sorted(answer_log_dir(models).glob("answers-*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]
    later = [r for r in records if datetime.fromisoformat(r["time"]).timestamp() > moment]
    return sorted(later, key=lambda r: r["time"])


def _read(path: Path) -> dict[str, Any] | None:
    try:
        return orjson.loads(path.read_bytes())
    except (FileNotFoundError, orjson.JSONDecodeError):
        return None


def test_a_folder_holding_other_files_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "photos").mkdir(parents=True)
    (home / "photos" / "cat.jpg").write_bytes(b"\xff\xd8 a cat")
    (home / "notes.txt").write_text("keep me")
    (home / "store").mkdir()  # named like a run's entry, but no run made it
    (home / "store" / "mine.parquet").write_bytes(b"PAR1")
    before = snapshot(home)
    done = movierec("run", "--dir", str(home), *ANY_PORTS, "--days", "1")
    assert done.returncode == 2
    assert f"--dir {home} already holds files that no run made" in done.stderr
    assert snapshot(home) == before  # nothing deleted, changed or added (no marker either)


def test_a_path_that_is_a_file_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "data"
    target.write_text("not a folder")
    done = movierec("run", "--dir", str(target), *ANY_PORTS, "--days", "1")
    assert done.returncode == 2
    assert "exists and is not a folder" in done.stderr
    assert target.read_text() == "not a folder"


def test_a_run_folder_is_resumed_as_it_is(tmp_path: Path) -> None:
    root = tmp_path / "run"
    assert prepare_run_dir(root) is False
    (root / "store").mkdir()
    (root / "site").mkdir()
    (root / "store" / "events.parquet").write_bytes(b"PAR1 kept")
    before = snapshot(root)
    assert prepare_run_dir(root) is True
    assert snapshot(root) == before  # resuming deletes nothing
    assert (root / MARKER).is_file()


def test_an_older_runs_folder_without_a_site_checkpoint_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "run"
    prepare_run_dir(root)
    (root / "store").mkdir()
    before = snapshot(root)
    done = movierec("run", "--dir", str(root), *ANY_PORTS, "--days", "1")
    assert done.returncode == 2
    assert "has a store but no site checkpoint" in done.stderr
    assert snapshot(root) == before


def test_a_taken_port_is_refused_naming_the_flag(tmp_path: Path) -> None:
    import socket

    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = held.getsockname()[1]
        done = movierec(
            "run", "--dir", str(tmp_path / "run"), *ANY_PORTS, "--service-port", str(port)
        )
    assert done.returncode == 2
    assert f"port {port} (service) is taken" in done.stderr and "--service-port" in done.stderr
