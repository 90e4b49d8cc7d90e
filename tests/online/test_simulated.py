"""The online figures on simulated runs against the real service: the log-derived
conversion equals the simulator's own count exactly, and an experiment between the trained
model and random lists declares random lists worse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from movierec.online.figures import online_report
from movierec.registry.versions import Registry
from tests.support.commands import movierec
from tests.support.online import serve_models
from tests.support.simulated_run import SMALL, SiteRun, register_random_lists
from tests.support.waiting import wait_until


@pytest.fixture
def site(simulated_run: SiteRun) -> SiteRun:
    return simulated_run


def test_conversion_from_the_log_equals_the_simulators_ledger(site: SiteRun) -> None:
    report = online_report(site.store, site.models, final=True)
    overall, ledger = report["overall"], site.conversion
    assert overall["answered"] == ledger["answered"] > 500
    assert overall["judged"] == ledger["answered"]
    assert overall["followed"] == ledger["followed"] > 50
    # Every answer was paired with the record of the version that gave it.
    trained = {v["version"] for v in Registry(site.models).read()["versions"]}
    answered = {v: f["answered"] for v, f in report["versions"].items() if f["answered"]}
    assert set(answered) <= trained
    assert sum(answered.values()) == ledger["answered"]
    assert report["pending"]["requests_awaiting_answer_record"] == 0


def test_an_experiment_against_random_lists_declares_them_worse(
    site: SiteRun, tmp_path: Path
) -> None:
    models = tmp_path / "models"  # the shared run stays as it was
    shutil.copytree(site.models, models)
    production = Registry(models).production()
    assert production is not None
    floor = register_random_lists(site.store, models)
    live = serve_models(models, tmp_path)
    try:
        started = movierec(
            "experiment", "start", "--models", str(models),
            "--arm", f"control={production}:0.5", "--arm", f"candidate={floor}:0.5",
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        experiment = json.loads(started.stdout)["id"]
        # The running service picks the experiment up without a restart.
        wait_until(
            lambda: (
                json.loads(live.get("/healthz")[1]).get("experiment", {}).get("id") == experiment
            ),
            what="the service to run the experiment",
        )
        log = tmp_path / "log"
        simulated = movierec(
            "simulate", f"--users={SMALL['users']}", f"--movies={SMALL['movies']}",
            f"--seed={SMALL['seed']}", "--days=5", "--faults=0", "--quiet",
            f"--service=http://{live.address}", f"--stream=file://{log}",
        )  # fmt: skip
        assert simulated.returncode == 0, simulated.stderr[-2000:]
    finally:
        live.stop()
    store = tmp_path / "store"
    ingested = movierec(
        "ingest", "--source", f"file://{log}", "--store", str(store), "--api", "", "--quiet"
    )
    assert ingested.returncode == 0, ingested.stderr[-2000:]
    out = tmp_path / "experiment.json"
    reported = movierec(
        "experiment", "report", "--store", str(store), "--models", str(models),
        "--report", str(out), "--final",
    )  # fmt: skip
    assert reported.returncode == 0, reported.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["experiment"] == experiment
    arms = report["arms"]
    assert arms["control"]["version"] == production and arms["candidate"]["version"] == floor
    for arm in arms.values():
        assert arm["requests"] > 200
        low, high = arm["conversion@30m"]["interval"]
        assert low <= arm["conversion@30m"]["value"] <= high
    verdict = {c["metric"]: c["verdict"] for c in report["comparisons"]}
    figures = {name: arm["conversion@30m"] for name, arm in arms.items()}
    assert verdict["conversion@30m"] == "worse", figures
