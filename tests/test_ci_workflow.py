"""The GitHub Actions workflow (.github/workflows/ci.yml): valid against GitHub's published
schema (bundled with check-jsonschema, so offline), and doing what .ci/run does on the
machine the scripts expect, with reports/ uploaded whatever the outcome."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.schemas import assert_valid

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github/workflows/ci.yml"


@pytest.fixture(scope="module")
def job() -> dict[str, Any]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert list(workflow["jobs"]) == ["test"]
    return workflow["jobs"]["test"]


def test_the_workflow_is_valid_for_github_actions() -> None:
    assert_valid(WORKFLOW, "vendor.github-workflows")


def test_it_runs_ci_run_on_debian_as_ci(job: dict[str, Any]) -> None:
    assert job["container"]["image"] == "debian:bookworm"
    assert "--privileged" in job["container"]["options"]
    assert job["env"]["CI"] == "1"
    assert job["timeout-minutes"] == 90
    runs = [step.get("run", "").strip() for step in job["steps"]]
    assert ".ci/run" in runs
    installed = " ".join(runs[0].split())
    for package in ("git", "python3", "python3-venv", "openjdk-17-jdk-headless", "maven"):
        assert f" {package} " in f" {installed} ", package
    checkout = next(s for s in job["steps"] if s.get("uses", "").startswith("actions/checkout@"))
    assert checkout["with"]["fetch-depth"] == 0  # the coverage floor's history is read


def test_it_uploads_reports_even_when_the_run_fails(job: dict[str, Any]) -> None:
    steps = job["steps"]
    ci_run = next(i for i, s in enumerate(steps) if s.get("run", "").strip() == ".ci/run")
    uploads = [(i, s) for i, s in enumerate(steps) if s.get("uses") == "actions/upload-artifact@v4"]
    assert len(uploads) == 1
    index, upload = uploads[0]
    assert index > ci_run
    assert upload["if"] == "always()"
    assert upload["with"]["path"].rstrip("/") == "reports"
