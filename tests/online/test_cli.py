"""`movierec online` and `movierec experiment` as a person types them: the report they write,
and a clear error, never a traceback or a silent empty report, when they cannot do their job."""

from __future__ import annotations

import json
from pathlib import Path

from movierec.registry.experiments import Experiments
from tests.support.commands import movierec
from tests.support.online import SEC, Answer, OnlineWorld, Request

T0 = 1_800_000_000 * SEC
ITEMS = ("m1", "m2", "m3")


def world(root: Path) -> OnlineWorld:
    """One user answered by v1 and following the list within the window; one timeout."""
    w = OnlineWorld(root)
    w.batch(
        requests=[Request(T0, 1, items=ITEMS), Request(T0 + SEC, 2, status=0)],
        watches=[(T0 + 60 * SEC, 1, "m2", 0)],
        answers=[Answer(1, "v1", ITEMS)],
    )
    return w


def test_online_writes_per_version_figures_and_prints_a_summary(tmp_path: Path) -> None:
    w = world(tmp_path)
    report = tmp_path / "out" / "online.json"
    done = movierec(
        "online", "--store", str(w.root / "store"), "--models", str(w.models),
        "--report", str(report), "--final",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    figures = json.loads(report.read_text())
    v1 = figures["versions"]["v1"]
    assert (v1["requests"], v1["conversion@30m"], v1["availability"]) == (2, 1.0, 0.5)
    for key in ("error_rate", "latency_p50_ms", "latency_p99_ms"):
        assert key in v1
    printed = json.loads(done.stdout)
    assert printed["overall"]["requests"] == 2 and printed["versions"] == 1
    assert (w.models / "online" / "state.json").exists()  # the default state, beside the registry


def test_online_over_a_store_never_ingested_says_so(tmp_path: Path) -> None:
    done = movierec(
        "online", "--store", str(tmp_path / "nowhere"), "--models", str(tmp_path / "models"),
        "--report", str(tmp_path / "online.json"),
    )  # fmt: skip
    assert done.returncode == 2
    assert "no committed events" in done.stderr and "movierec ingest" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "online.json").exists()


def test_online_without_an_answer_log_warns_that_nothing_is_attributed(tmp_path: Path) -> None:
    w = OnlineWorld(tmp_path)
    w.batch(requests=[Request(T0, 1, items=ITEMS)])
    done = movierec(
        "online", "--store", str(w.root / "store"), "--models", str(w.models),
        "--report", str(tmp_path / "online.json"),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "warning: no answer log in" in done.stderr
    # The request waits for a record that may still come, and the report says so.
    assert "no request counted yet: 1 wait for their answer record" in done.stderr
    figures = json.loads((tmp_path / "online.json").read_text())
    assert figures["versions"] == {} and figures["pending"]["requests_awaiting_answer_record"] == 1

    done = movierec(
        "online", "--store", str(w.root / "store"), "--models", str(w.models),
        "--report", str(tmp_path / "online.json"), "--final",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "1 answered requests of the log's last hour have no answer record" in done.stderr
    figures = json.loads((tmp_path / "online.json").read_text())
    assert figures["versions"] == {} and figures["pending"]["requests_awaiting_answer_record"] == 1


def test_experiment_start_refuses_what_the_service_could_not_follow(tmp_path: Path) -> None:
    models = tmp_path / "models"
    models.mkdir()
    for arms, message in [
        (["control=v1:0.5", "candidate=v2:0.5"], "versions not in the registry: v1, v2"),
        (["control=v1"], "expected NAME=VERSION:SHARE"),
        (["control=v1:0.5"], "at least two arms"),
    ]:
        args = [a for arm in arms for a in ("--arm", arm)]
        done = movierec("experiment", "start", "--models", str(models), *args)
        assert done.returncode == 2, done.stderr
        assert message in done.stderr and "Traceback" not in done.stderr
    assert Experiments(models).current() is None


def test_stop_and_report_with_no_experiment_say_so(tmp_path: Path) -> None:
    w = world(tmp_path)
    stopped = movierec("experiment", "stop", "--models", str(w.models))
    assert stopped.returncode == 1 and "no experiment is running" in stopped.stderr
    report = movierec(
        "experiment", "report", "--store", str(w.root / "store"), "--models", str(w.models),
        "--report", str(tmp_path / "experiment.json"),
    )  # fmt: skip
    assert report.returncode == 2 and "no experiment was ever started" in report.stderr
    assert not (tmp_path / "experiment.json").exists()
