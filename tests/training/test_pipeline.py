"""train and evaluate end to end on a simulated site's store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from movierec.features.interactions import time_range, training_data
from movierec.models.kinds import load_model
from movierec.registry.versions import Registry, data_hash
from movierec.store.events import EventStore
from movierec.training.pipeline import DEFAULT_MODELS
from tests.support.browser import chromium_dom
from tests.support.commands import movierec
from tests.support.simulated import SimulatedStore

ACCEPTANCE_METRICS = ("ndcg@20", "recall@20", "map@20", "hit_rate@20", "coverage", "gini")


@pytest.fixture
def trained(trained_models: Path, tmp_path: Path) -> Path:
    """A copy of the session's registry for each test: a test that promotes (or otherwise
    writes) changes only its own, so no test sees another's history."""
    copy = tmp_path / "models"
    shutil.copytree(trained_models, copy)
    return copy


def test_every_kind_is_registered_with_complete_provenance(
    trained: Path, simulated_store: SimulatedStore
) -> None:
    registry = Registry(trained)
    state = registry.read()
    assert {v["model"] for v in state["versions"]} == set(DEFAULT_MODELS)
    production = state["production"]
    assert production in {v["version"] for v in state["versions"]}
    assert (
        state["history"][-1]["to"] == production and "validation" in state["history"][-1]["reason"]
    )
    for entry in state["versions"]:
        p = registry.provenance(entry["version"])
        assert p["version"] == entry["version"] and p["model"] == entry["model"]
        assert set(p["data"]) >= {"from", "to", "content_hash", "interactions", "store_batch"}
        assert len(p["code"]["commit"]) == 40 or p["code"]["commit"] == "unknown"
        assert {"python", "numpy", "implicit", "movierec"} <= set(p["libraries"])
        assert p["hyperparameters"] and p["training_seconds"] >= 0
        assert set(ACCEPTANCE_METRICS) <= set(p["offline_metrics"])
        assert p["selection"]["metric"] == "ndcg@20" and p["selection"]["trials"]
    # The data hash says exactly what the models learned from: rebuilding gives the same.
    store = EventStore(simulated_store.path)
    last = time_range(store)[1]
    assert (
        data_hash(training_data(store, last + 1))
        == registry.provenance(production)["data"]["content_hash"]
    )


def test_a_saved_artifact_reloads_to_the_same_recommendations(
    trained: Path, tmp_path: Path
) -> None:
    registry = Registry(trained)
    users = np.arange(1, 2500)
    for version in registry.latest_by_model().values():
        copy = tmp_path / version
        shutil.copytree(registry.model_dir(version), copy)  # a move to another machine
        first = load_model(registry.model_dir(version)).recommend(users)
        again = load_model(copy).recommend(users)
        assert np.array_equal(first, again)
        assert ((first >= 0).sum(axis=1) == 20).all()


def test_versions_are_immutable(trained: Path) -> None:
    registry = Registry(trained)
    version = registry.production()
    before = sorted(p.stat().st_mtime_ns for p in (trained / "versions" / version).rglob("*"))
    registry.promote(version, "again")
    after = sorted(p.stat().st_mtime_ns for p in (trained / "versions" / version).rglob("*"))
    assert before == after
    last = registry.read()["history"][-1]
    assert last["to"] == version and last["reason"] == "again"
    with pytest.raises(ValueError, match="no such version"):
        registry.promote("nope", "")


def test_evaluation_report_has_every_metric_and_beats_popularity(
    trained: Path, simulated_store: SimulatedStore, tmp_path: Path
) -> None:
    report_path = tmp_path / "offline.json"
    done = movierec(
        "evaluate",
        "--store",
        str(simulated_store.path),
        "--models",
        str(trained),
        "--report",
        str(report_path),
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    models = report["models"]
    assert set(models) == set(DEFAULT_MODELS)
    for result in models.values():
        assert all(isinstance(result[m], float) for m in ACCEPTANCE_METRICS)
        subs = result["subpopulations"]
        assert {"user_type", "activity", "age_group", "gender", "occupation"} <= set(subs)
        assert (
            sum(g["members"] for g in subs["user_type"].values()) == report["split"]["test_users"]
        )
    # The model validation chose, not merely the best one, holds twice the baseline.
    chosen = next(m for m in models.values() if m["production"])
    assert chosen["ndcg@20"] >= 2 * models["popularity"]["ndcg@20"]
    assert report["production"] in {m["version"] for m in models.values()}
    page = report_path.with_suffix(".html")
    assert page.exists()
    check_in_browser(page, report["best"])


def check_in_browser(page: Path, best: str) -> None:
    """Open the page in a real headless Chromium and read what it rendered."""
    dom = chromium_dom(page.as_uri(), page.parent / "chrome")
    assert "<h1>Offline evaluation</h1>" in dom
    assert f'<b id="best">{best}</b>' in dom
    assert dom.count("data:image/png;base64,") >= 7
