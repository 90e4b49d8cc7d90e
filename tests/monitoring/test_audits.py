"""The monitor's background audit: the first one an interval after start, one at a time,
each report taken once, and a section that cannot be computed is the step's problem."""

from __future__ import annotations

from pathlib import Path

from movierec.monitoring.audits import AuditRunner
from movierec.monitoring.config import MonitorConfig


def test_an_audit_of_an_empty_store_runs_when_due_and_says_what_failed(tmp_path: Path) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "models").mkdir()
    config = MonitorConfig(store=tmp_path / "store", models_dir=tmp_path / "models",
                           audit_every=60.0)  # fmt: skip
    runner = AuditRunner(config, tmp_path / "monitor" / "audit.json")
    assert not runner.start_if_due(0.0)  # the clock starts: not yet due
    assert not runner.start_if_due(59.0)
    assert runner.start_if_due(60.0)
    assert runner.wait(120)
    report = runner.take()
    assert report is not None and runner.take() is None  # taken once
    assert (tmp_path / "monitor" / "audit.json").exists()
    assert (tmp_path / "monitor" / "audit.html").exists()
    assert runner.problem is not None and "exposure" in runner.problem
    assert report["alerts"]["adult_violations"] is None  # nothing to say is not "0"
    assert runner.summary()["error"] == runner.problem
    assert not runner.start_if_due(100.0)  # the next one is an interval later
    assert runner.start_if_due(120.0)
    assert runner.wait(120)


def test_audits_switched_off_never_start(tmp_path: Path) -> None:
    config = MonitorConfig(store=tmp_path, models_dir=tmp_path, audit_every=0)
    runner = AuditRunner(config, tmp_path / "audit.json")
    assert not any(runner.start_if_due(at) for at in (0.0, 1e6, 2e6))
