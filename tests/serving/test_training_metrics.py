"""Training figures on the service's /metrics: what the registry says about the version
the loader installs (versions registered, fitting time, training time, offline scores),
exact for a hand-made registry, and left out where the provenance does not say."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from movierec.models.popularity import PopularityRecommender
from movierec.serving.app import RecommendationService
from movierec.serving.loader import ModelLoader
from movierec.serving.metrics import Metrics
from tests.models.contract import planted_data
from tests.support.serving import hand_made_models, provenance_of

TRAINING = [
    "movierec_training_runs_total",
    "movierec_model_training_seconds",
    "movierec_model_trained_timestamp_seconds",
    "movierec_model_offline_score",
]


def scrape(metrics: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(metrics.render().decode())
        for s in family.samples
    }


def test_the_installed_versions_training_figures_are_exported(tmp_path: Path) -> None:
    models = hand_made_models(tmp_path / "models", planted_data())
    data = models.data
    trained = "2026-01-02T03:04:05+00:00"
    version = models.registry.add(
        PopularityRecommender().fit(data),
        {
            **provenance_of(data),
            "trained_at": trained,
            "training_seconds": 12.5,
            "offline_metrics": {"ndcg@20": 0.25, "recall@20": 0.5, "note": "text is no score"},
        },
    )
    models.registry.promote(version, "a test")
    service = RecommendationService(models.registry.root, sample=0.0)
    try:
        assert ModelLoader(service).check()
        got = scrape(service.metrics)
    finally:
        service.answers.close()
    assert got[("movierec_training_runs_total", frozenset())] == 3  # itemknn, coldstart, this
    assert got[("movierec_model_training_seconds", frozenset())] == 12.5
    stamp = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC).timestamp()
    assert got[("movierec_model_trained_timestamp_seconds", frozenset())] == stamp
    scores = {
        dict(labels)["metric"]: v
        for (name, labels), v in got.items()
        if name == "movierec_model_offline_score"
    }
    assert scores == {"ndcg@20": 0.25, "recall@20": 0.5}


def test_figures_the_provenance_lacks_are_absent_not_zero(tmp_path: Path) -> None:
    models = hand_made_models(tmp_path / "models", planted_data())  # no times, no scores
    service = RecommendationService(models.registry.root, sample=0.0)
    try:
        before = {name for name, _ in scrape(service.metrics)}
        assert not before & set(TRAINING)  # nothing before the first install
        assert ModelLoader(service).check()
        got = scrape(service.metrics)
    finally:
        service.answers.close()
    names = {name for name, _ in got}
    assert got[("movierec_training_runs_total", frozenset())] == 2
    assert not names & set(TRAINING[1:])


def test_an_unreadable_provenance_costs_the_figures_not_the_model(tmp_path: Path) -> None:
    models = hand_made_models(tmp_path / "models", planted_data())
    service = RecommendationService(models.registry.root, sample=0.0)
    loader = ModelLoader(service)
    try:
        assert loader.check()  # loads the model; then its provenance goes bad
        provenance = models.registry.versions_dir / models.version / "provenance.json"
        provenance.write_text("{not json")
        loader._read_training_figures(models.version)
        got = scrape(service.metrics)
    finally:
        service.answers.close()
    assert service.snapshot is not None and service.snapshot.version == models.version
    assert not {name for name, _ in got} & set(TRAINING)
    json.loads(models.registry.path.read_text())  # the registry itself was left alone
