"""The release gate on a store whose right answer is known (tests/support/ratings.py: two
taste groups; a model that learns tastes beats popularity, which random lists do not):
a worse candidate is refused with its evidence, an equal or better one passes, a leaked
production is compared by recipe, and lists that could not be served whole fail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from movierec.catalog.reader import Catalogue
from movierec.evaluation.plan import Plan, plan
from movierec.evaluation.split import SplitConfig
from movierec.features.feedback import FeedbackConfig
from movierec.features.interactions import training_data
from movierec.models.base import TrainingData
from movierec.models.kinds import fit, load_model
from movierec.registry.versions import Registry
from movierec.release.gate import (
    GateConfig,
    Verdict,
    comparison_for,
    judge,
    score_as_is,
    score_recipe,
)
from movierec.release.train import gated_train
from movierec.store.events import EventStore
from movierec.times import iso
from movierec.training.pipeline import TrainConfig
from tests.support.ratings import steady_store

SECOND = 10**9


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> EventStore:
    return steady_store(str(tmp_path_factory.mktemp("gate") / "store"))


@pytest.fixture(scope="module")
def folds(store: EventStore) -> Plan:
    folds = plan(store, FeedbackConfig(), SplitConfig())
    assert folds.kind == "time" and folds.comparable
    return folds


@pytest.fixture(scope="module")
def catalogue(store: EventStore) -> Catalogue:
    return Catalogue.load(store.catalog_path)


@pytest.fixture(scope="module")
def everything(store: EventStore, folds: Plan) -> TrainingData:
    return training_data(store, folds.last_ns + 1)


def add(registry: Registry, kind: str, data: TrainingData, to_ns: int) -> str:
    """A version of `kind` learned from `data`, whose provenance says its data ends at
    `to_ns` (what the gate reads to tell whether it saw the validation period)."""
    fitted = fit(kind, {}, data, 0)
    provenance = {"data": {"to": iso(to_ns)}, "hyperparameters": fitted.params.to_dict()}
    return registry.add(fitted, provenance)


def gate(
    registry: Registry,
    candidate: str,
    production: str,
    folds: Plan,
    catalogue: Catalogue,
    **kw: Any,
) -> Verdict:
    return judge(registry, candidate, production, folds, catalogue, GateConfig(**kw))


def checks(verdict: Verdict) -> dict[str, bool]:
    return {c.name: c.passed for c in verdict.checks}


def test_a_leaked_production_is_compared_by_recipe(
    tmp_path: Path, folds: Plan, catalogue: Catalogue, everything: TrainingData
) -> None:
    registry = Registry(tmp_path)
    production = add(registry, "rp3beta", everything, folds.last_ns)
    candidate = add(registry, "popularity", everything, folds.last_ns)
    kind, why = comparison_for(registry.provenance(production), folds)
    assert kind == "recipe" and "past the validation cut" in why
    # Why as-is is unfair here: the artifact has seen every held-out rating, and a model
    # never lists what a user already rated, so it would score nothing at all.
    leaked = score_as_is(load_model(registry.model_dir(production)), folds, catalogue)
    recipe = score_recipe(registry.provenance(production), folds, catalogue, 0)
    assert leaked["ndcg@20"] == 0.0 and recipe["ndcg@20"] > 0.4
    verdict = gate(registry, candidate, production, folds, catalogue)
    assert verdict.comparison == "recipe"
    assert verdict.scores["production"] == recipe["ndcg@20"]
    assert not verdict.passed and [c.name for c in verdict.failed] == ["score"]


def test_a_production_from_before_the_cut_is_scored_as_it_serves(
    tmp_path: Path, folds: Plan, catalogue: Catalogue, everything: TrainingData
) -> None:
    registry = Registry(tmp_path)
    cut = folds.cuts["validation_cut"]
    production = add(registry, "popularity", folds.validation.train, cut - 2 * SECOND)
    candidate = add(registry, "rp3beta", everything, folds.last_ns)
    verdict = gate(registry, candidate, production, folds, catalogue)
    assert verdict.comparison == "as_is"
    # It learned exactly the candidate's training fold: as it serves equals its recipe.
    recipe = score_recipe(registry.provenance(production), folds, catalogue, 0)
    assert verdict.scores["production"] == pytest.approx(recipe["ndcg@20"])
    assert verdict.scores["candidate"] > 1.5 * verdict.scores["production"]
    assert verdict.passed, verdict.summary()


def test_random_lists_are_refused_with_the_evidence(
    tmp_path: Path, folds: Plan, catalogue: Catalogue, everything: TrainingData
) -> None:
    registry = Registry(tmp_path)
    cut = folds.cuts["validation_cut"]
    production = add(registry, "rp3beta", folds.validation.train, cut - 2 * SECOND)
    candidate = add(registry, "random", everything, folds.last_ns)
    verdict = gate(registry, candidate, production, folds, catalogue)
    assert checks(verdict) == {
        "score": False,
        "snapshot_build": True,
        "full_lists": True,
        "answer_delay": True,
        "coverage": True,
    }
    score = verdict.checks[0]
    assert score.value < score.threshold == round(0.98 * verdict.scores["production"], 6)
    assert verdict.summary().startswith("gate refused: ndcg@20")


def test_an_equal_candidate_passes_even_without_margin(
    tmp_path: Path, folds: Plan, catalogue: Catalogue, everything: TrainingData
) -> None:
    registry = Registry(tmp_path)
    production = add(registry, "itemknn", everything, folds.last_ns)
    candidate = add(registry, "itemknn", everything, folds.last_ns)
    verdict = gate(registry, candidate, production, folds, catalogue, margin=0.0)
    assert verdict.scores["candidate"] == verdict.scores["production"] > 0.4
    assert verdict.passed, verdict.summary()


def test_the_margin_is_relative_to_production(
    tmp_path: Path, folds: Plan, catalogue: Catalogue, everything: TrainingData
) -> None:
    registry = Registry(tmp_path)
    production = add(registry, "rp3beta", everything, folds.last_ns)
    candidate = add(registry, "popularity", everything, folds.last_ns)
    strict = gate(registry, candidate, production, folds, catalogue)
    mine, theirs = strict.scores["candidate"], strict.scores["production"]
    assert 0.5 < mine / theirs < 0.6  # popularity a little over half of RP3beta here
    assert not gate(registry, candidate, production, folds, catalogue, margin=0.4).passed
    assert gate(registry, candidate, production, folds, catalogue, margin=0.5).passed


def test_repeated_movie_ids_fail_the_full_lists_check(
    tmp_path: Path, folds: Plan, catalogue: Catalogue, everything: TrainingData
) -> None:
    registry = Registry(tmp_path)
    production = add(registry, "itemknn", everything, folds.last_ns)
    candidate = add(registry, "itemknn", everything, folds.last_ns)
    # A defective artifact: two columns spell the same movie, so lists repeat it.
    path = registry.model_dir(candidate) / "item_ids.npy"
    ids = np.load(path)
    ids[1] = ids[0]
    np.save(path, ids)
    verdict = gate(registry, candidate, production, folds, catalogue)
    full = next(c for c in verdict.checks if c.name == "full_lists")
    assert not full.passed and full.value > 0 and "repeated" in full.detail
    assert not verdict.passed


def test_an_artifact_that_cannot_build_fails_and_says_why(
    tmp_path: Path, folds: Plan, catalogue: Catalogue, everything: TrainingData
) -> None:
    registry = Registry(tmp_path)
    production = add(registry, "itemknn", everything, folds.last_ns)
    candidate = add(registry, "itemknn", everything, folds.last_ns)
    path = registry.model_dir(candidate) / "item_ids.npy"
    ids = np.load(path)
    ids[0] = "not a movie"
    np.save(path, ids)
    verdict = gate(registry, candidate, production, folds, catalogue)
    assert checks(verdict)["snapshot_build"] is False
    assert checks(verdict)["full_lists"] is False
    assert checks(verdict)["answer_delay"] is False
    build = next(c for c in verdict.checks if c.name == "snapshot_build")
    assert "not movie ids" in build.detail


def test_a_model_that_declares_slow_answers_is_refused_before_any_canary(
    tmp_path: Path, folds: Plan, catalogue: Catalogue, everything: TrainingData
) -> None:
    registry = Registry(tmp_path)
    production = add(registry, "popularity", folds.validation.train, folds.last_ns)
    candidate = add(registry, "slow", everything, folds.last_ns)
    verdict = gate(registry, candidate, production, folds, catalogue)
    delay = next(c for c in verdict.checks if c.name == "answer_delay")
    assert (delay.value, delay.threshold, delay.passed) == (800.0, 50.0, False)
    assert not verdict.passed and "answer_delay" in verdict.summary()


def test_a_production_that_cannot_be_scored_keeps_production_loudly(
    tmp_path: Path, folds: Plan, catalogue: Catalogue, everything: TrainingData
) -> None:
    registry = Registry(tmp_path)
    production = add(registry, "itemknn", everything, folds.last_ns)
    candidate = add(registry, "itemknn", everything, folds.last_ns)
    record = registry.versions_dir / production / "provenance.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "model": "gone"}))
    verdict = gate(registry, candidate, production, folds, catalogue)
    assert verdict.comparison == "none" and "unknown model 'gone'" in verdict.why
    assert not verdict.passed and checks(verdict)["score"] is False


def test_train_promotes_only_past_the_gate_and_records_why(
    tmp_path: Path, store: EventStore
) -> None:
    def run(**kw: Any) -> dict[str, Any]:
        config = TrainConfig(store=str(store.root), models_dir=str(tmp_path), budget_seconds=0)
        return gated_train(config.model_copy(update=kw), GateConfig())

    registry = Registry(tmp_path)
    first = run()
    assert first["promoted"] and not first["gate"]["judged"]
    production = first["production"]
    assert production == first["versions"][first["winner"]]

    worse = run(models=("popularity",))
    assert not worse["promoted"] and worse["production"] == production
    assert worse["gate"]["judged"] and not worse["gate"]["passed"]
    assert worse["gate"]["comparison"]["kind"] == "recipe"  # production saw everything
    assert "not promoted" in worse["reason"] and production in worse["reason"]
    last = registry.read()["history"][-1]
    assert last["from"] == last["to"] == production and last["reason"] == worse["reason"]
    evidence = json.loads(Path(worse["gate"]["evidence"]).read_text())
    assert evidence == {k: v for k, v in worse["gate"].items() if k not in ("judged", "evidence")}
    assert registry.production() == production

    again = run()  # the same recipe on the same data: equal, so it passes
    assert again["promoted"] and again["gate"]["passed"]
    assert registry.production() == again["versions"][again["winner"]] != production
    assert "gate passed" in registry.read()["history"][-1]["reason"]
