"""`movierec audit` on a whole simulated run (the shared `simulated_run`: the site's users
calling our real service for a few days): every section the issue names is in the
report, the alert figures follow from the sections, the page shows them in a real
browser, and a store or registry that is not there is a clear refusal."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.browser import chromium_dom
from tests.support.commands import movierec
from tests.support.simulated_run import SiteRun

SECTIONS = ("fairness", "exposure", "feedback_loop", "attacks", "safety")


@pytest.fixture(scope="module")
def audited(simulated_run: SiteRun, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("audit")
    done = movierec(
        "audit", "--store", str(simulated_run.store), "--models", str(simulated_run.models),
        "--report", str(out / "audit.json"),
    )  # fmt: skip
    assert done.returncode in (0, 1), done.stderr
    report = json.loads((out / "audit.json").read_text())
    return {"report": report, "page": out / "audit.html", "done": done, "out": out}


def test_the_report_has_every_section_and_the_figures_the_alerts_read(audited: dict) -> None:
    report = audited["report"]
    assert all(name in report for name in SECTIONS)
    printed = json.loads(audited["done"].stdout)
    assert printed["alerts"] == report["alerts"]
    # Exit 1 exactly when a section could not be computed, each one named on stderr.
    errors = [p for p in report["problems"] if "error" in p]
    assert (audited["done"].returncode == 1) == bool(errors)
    for problem in errors:
        assert problem["section"] in audited["done"].stderr


def test_the_run_shows_no_adult_movie_to_a_minor(audited: dict) -> None:
    safety = audited["report"]["safety"]
    assert safety["answers_checked"] > 0
    assert safety["violations"] == 0
    assert audited["report"]["alerts"]["adult_violations"] == 0


def test_the_feedback_loop_is_measured_per_day(audited: dict, simulated_run: SiteRun) -> None:
    days = audited["report"]["feedback_loop"]["days"]
    assert len(days) >= 3  # a four-day run
    assert all(0 <= d["recommended"]["gini"] <= 1 for d in days)


def test_the_page_shows_every_section_in_a_browser(audited: dict, tmp_path: Path) -> None:
    dom = chromium_dom(audited["page"].as_uri(), tmp_path / "chrome")
    for name in SECTIONS:
        assert f'id="{name}"' in dom
    assert dom.count("data:image/png;base64,") >= 1  # the feedback loop's plot at least


def test_a_missing_store_or_registry_is_refused_clearly(tmp_path: Path) -> None:
    done = movierec(
        "audit", "--store", str(tmp_path / "nope"), "--models", str(tmp_path),
        "--report", str(tmp_path / "a.json"),
    )  # fmt: skip
    assert done.returncode == 2 and "no event store" in done.stderr
    assert not (tmp_path / "a.json").exists()
