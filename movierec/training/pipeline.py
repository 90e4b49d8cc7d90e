"""`movierec train`: from the event store to versioned, reproducible models in a registry.

    validation  search hyperparameters: learn before V, score on watches in [V, T)
    test        measure each kind's best: learn before T, evaluate on watches after T
    release     learn from everything, save each kind as a new version, and put the
                kind with the best validation score in production (recording why)

T cuts the stored time range at `train_share` (80%), V cuts [start, T) likewise; the
validation score alone picks the winner, the test figures are reported.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from movierec.catalog.reader import Catalogue
from movierec.config import Settings, option
from movierec.evaluation.offline import evaluate
from movierec.evaluation.split import cut_at_share, holdout
from movierec.features.feedback import FeedbackConfig
from movierec.features.interactions import time_range, training_data
from movierec.models.base import TrainingData
from movierec.models.kinds import fit
from movierec.registry.versions import Registry, code_version, data_hash, library_versions
from movierec.store.events import EventStore
from movierec.times import iso
from movierec.training.search import SearchResult, search

ModelKind = Literal["popularity", "als", "itemknn", "coldstart"]  # movierec.models.kinds.MODELS
DEFAULT_MODELS: tuple[ModelKind, ...] = ("popularity", "als", "itemknn", "coldstart")
BASELINE = "popularity"


class TrainConfig(Settings):
    """`movierec train`'s settings (flags, MOVIEREC_TRAIN_* variables, [train] of the file)."""

    component: ClassVar[str] = "train"

    store: str = Field(description="the event store directory")
    models_dir: str = Field(
        description="the model registry directory", json_schema_extra=option("models")
    )
    models: tuple[ModelKind, ...] = Field(
        DEFAULT_MODELS,
        min_length=1,
        description=f"model kinds to train, repeated (the {BASELINE} baseline always is)",
        json_schema_extra=option("model"),
    )
    metric: str = Field("ndcg@20", description="what picks the production model")
    budget_seconds: float = Field(
        120.0,
        ge=0,
        description="seconds for the hyperparameter search",
        json_schema_extra=option("budget"),
    )
    train_share: float = Field(
        0.8, gt=0, lt=1, description="share of the time range before the test cut"
    )
    seed: int = Field(0, description="seed of every model's random start")
    feedback: FeedbackConfig = Field(
        default_factory=FeedbackConfig, description="how events become confidence"
    )

    @field_validator("models")
    @classmethod
    def _with_baseline(cls, models: tuple[str, ...]) -> tuple[str, ...]:
        # The baseline is what every other kind is judged against (and the fallback winner).
        unique = tuple(dict.fromkeys(models))
        return unique if BASELINE in unique else (BASELINE, *unique)


def train(config: TrainConfig, progress: Callable[..., None] | None = None) -> dict[str, Any]:
    store, registry = EventStore(config.store), Registry(config.models_dir)
    span = time_range(store)
    if span is None:
        raise ValueError(f"the store {config.store} holds no watch or rate events yet")
    first, last = span
    test_cut = cut_at_share(first, last, config.train_share)
    validation_cut = cut_at_share(first, test_cut, config.train_share)
    catalogue = Catalogue.load(store.catalog_path)
    say = progress or (lambda *_, **__: None)

    # Validation: pick hyperparameters.
    val_train = training_data(store, validation_cut, config.feedback)
    val_test = holdout(store, val_train, validation_cut, test_cut)

    def score(model: str, params: dict[str, Any]) -> float:
        if val_test.n_users == 0:
            return float("nan")
        fitted = fit(model, params, val_train, config.seed)
        return float(evaluate(fitted, val_train, val_test, catalogue)[config.metric])

    result = search(
        list(config.models), score, config.metric, config.budget_seconds, config.seed, say
    )

    # Test: measure each kind's best settings honestly.
    test_train = training_data(store, test_cut, config.feedback)
    test = holdout(store, test_train, test_cut)
    offline: dict[str, dict[str, Any]] = {}
    for model in config.models:
        best = result.best(model)
        if test.n_users:
            fitted = fit(model, best.params, test_train, config.seed)
            offline[model] = evaluate(fitted, test_train, test, catalogue)
        say(
            {
                "stage": "test",
                "model": model,
                config.metric: offline.get(model, {}).get(config.metric),
            },
            force=True,
        )

    # Release: learn from everything, register every kind, promote the winner.
    full = training_data(store, last + 1, config.feedback)
    provenance_base = _provenance_base(
        config, full, first, last, test_cut, validation_cut, result, store
    )
    versions: dict[str, str] = {}
    for model in config.models:
        best = result.best(model)
        started = time.monotonic()
        fitted = fit(model, best.params, full, config.seed)
        provenance = {
            **provenance_base,
            "hyperparameters": fitted.params.to_dict(),
            "training_seconds": round(time.monotonic() - started, 3),
            "validation": {config.metric: best.score},
            "offline_metrics": {
                k: v for k, v in offline.get(model, {}).items() if k != "subpopulations"
            },
        }
        versions[model] = registry.add(fitted, provenance)
        say({"stage": "release", "model": model, "version": versions[model]}, force=True)
    winner, reason = _choose(result, config)
    registry.promote(versions[winner], reason)
    return {
        "production": versions[winner],
        "winner": winner,
        "reason": reason,
        "versions": versions,
        "search": result.to_json(),
        "offline": {
            m: {k: v for k, v in r.items() if k != "subpopulations"} for m, r in offline.items()
        },
        "split": {
            "start": iso(first),
            "validation_cut": iso(validation_cut),
            "test_cut": iso(test_cut),
            "end": iso(last),
            "validation_users": val_test.n_users,
            "test_users": test.n_users,
        },
    }


def _choose(result: SearchResult, config: TrainConfig) -> tuple[str, str]:
    best = {m: result.best(m) for m in config.models}
    winner = max(best, key=lambda m: -1.0 if math.isnan(best[m].score) else best[m].score)
    baseline = best[BASELINE].score
    tried = len(result.trials)
    if math.isnan(best[winner].score):
        return BASELINE, "no validation users to compare models on: the popularity baseline"
    return winner, (
        f"best {config.metric} on the validation split: {winner} {best[winner].score:.4f} "
        f"(popularity baseline {baseline:.4f}; {tried} candidates over {len(best)} kinds)"
    )


def _provenance_base(
    config: TrainConfig,
    full: TrainingData,
    first: int,
    last: int,
    test_cut: int,
    validation_cut: int,
    result: SearchResult,
    store: EventStore,
) -> dict[str, Any]:
    checkpoint = store.checkpoint()
    return {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {
            "store": str(store.root),
            "store_batch": checkpoint.seq if checkpoint else 0,
            "from": iso(first),
            "to": iso(last),
            "content_hash": data_hash(full),
            "users": full.n_users,
            "items": full.n_items,
            "interactions": int(full.matrix.nnz),
            "feedback": config.feedback.model_dump(),
        },
        "code": code_version(),
        "libraries": library_versions(),
        "selection": {
            "metric": config.metric,
            "validation_cut": iso(validation_cut),
            "test_cut": iso(test_cut),
            "budget_seconds": config.budget_seconds,
            "trials": result.to_json()["trials"],
        },
    }
