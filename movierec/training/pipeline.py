"""`movierec train`: from the event store to versioned, reproducible models in a registry.

    validation  search hyperparameters on the plan's validation fold
    test        measure each kind's best on its test fold
    register    learn from everything and save each kind as a new version; the kind
                with the best validation score is the winner (`register`)
    release     `train` puts the winner in production (recording why); the `movierec
                train` command promotes it only past the gate against production
                (movierec/release/gate.py), which sits above this role

The folds (movierec.evaluation.plan) are a time split, or each user's latest
interactions when a time cut leaves too few users. The validation score alone picks
the winner; the test figures are reported. When no validation user exists, nothing is
promoted: the production model stays, and the registry records why.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator, model_validator

from movierec.catalog.reader import Catalogue
from movierec.config import Settings, group, option
from movierec.evaluation.offline import evaluate
from movierec.evaluation.plan import Plan, plan
from movierec.evaluation.split import SplitConfig
from movierec.features.feedback import FeedbackConfig
from movierec.features.interactions import training_data
from movierec.models.base import TrainingData
from movierec.registry.versions import Registry, code_version, data_hash, library_versions
from movierec.store.events import EventStore
from movierec.times import iso
from movierec.training.engines import Engine, Trainer, trainer
from movierec.training.search import SearchResult, search
from movierec.training.spark_session import SparkConfig

# movierec.models.kinds.MODELS (tests/training check they agree)
ModelKind = Literal[
    "popularity", "als", "itemknn", "coldstart", "ease", "rp3beta", "bpr", "random", "slow"
]
# bpr is opt-in: its SGD takes minutes per fit at full size (about 10 at 20M interactions).
# random (random lists) is only for experiments that need a floor: it must be asked for.
# slow (popularity answered late on purpose) is only for canary tests: it must be asked for.
DEFAULT_MODELS: tuple[ModelKind, ...] = (
    "popularity",
    "als",
    "itemknn",
    "ease",
    "rp3beta",
    "coldstart",
)
BASELINE = "popularity"
# What the Spark engine trains unless --model says otherwise: the kinds that run there (and
# the baseline), not the in-process kinds a data set that needs Spark would not fit.
SPARK_DEFAULT_MODELS: tuple[ModelKind, ...] = (BASELINE, "als")


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
    split: SplitConfig = Field(
        default_factory=SplitConfig, description="what validation and test hold out"
    )
    engine: Engine = Field(
        "numpy",
        description="where ALS trains: numpy (this process) or spark (Spark MLlib on "
        "--spark-master; movierec/training/engines.py), which trains als and popularity "
        "unless --model names kinds",
    )
    spark: SparkConfig = Field(
        default_factory=SparkConfig,
        description="the Spark engine's session",
        json_schema_extra=group("spark_"),
    )

    @model_validator(mode="before")
    @classmethod
    def _spark_kinds(cls, values: Any) -> Any:
        if isinstance(values, dict) and values.get("engine") == "spark" and "models" not in values:
            return {**values, "models": SPARK_DEFAULT_MODELS}
        return values

    @field_validator("models")
    @classmethod
    def _with_baseline(cls, models: tuple[str, ...]) -> tuple[str, ...]:
        # The baseline is what every other kind is judged against (and the fallback winner).
        unique = tuple(dict.fromkeys(models))
        return unique if BASELINE in unique else (BASELINE, *unique)


@dataclass
class TrainRun:
    """What one training registered: the split it judged on, every kind's new version, and
    the kind it would promote (None when nothing could be compared, with why)."""

    config: TrainConfig
    folds: Plan
    catalogue: Catalogue
    result: SearchResult
    validation: dict[str, dict[str, Any]]  # each kind's best settings, scored on validation
    offline: dict[str, dict[str, Any]]  # each kind's best settings, on the test fold
    versions: dict[str, str]
    winner: str | None
    reason: str

    @property
    def candidate(self) -> str | None:
        """The winner's new version: what a release would put in production."""
        return self.versions[self.winner] if self.winner is not None else None

    def summary(self, production: str | None, promoted: bool, reason: str) -> dict[str, Any]:
        return {
            "production": production,
            "promoted": promoted,
            "winner": self.winner,
            "reason": reason,
            "versions": self.versions,
            "search": self.result.to_json(),
            "offline": {
                m: {k: v for k, v in r.items() if k != "subpopulations"}
                for m, r in self.offline.items()
            },
            "split": self.folds.describe(),
        }


def train(config: TrainConfig, progress: Callable[..., None] | None = None) -> dict[str, Any]:
    """Register every kind and promote the winner, compared with nothing but the other
    kinds of this run (movierec.release.train gates the winner against production)."""
    run = register(config, progress)
    registry = Registry(config.models_dir)
    if run.candidate is None:
        # Nothing to compare on: keep what serves now, and say so where people look.
        registry.keep(run.reason)
    else:
        registry.promote(run.candidate, run.reason)
    return run.summary(registry.production(), run.candidate is not None, run.reason)


def register(config: TrainConfig, progress: Callable[..., None] | None = None) -> TrainRun:
    """Search, test and register every kind; promotes nothing."""
    with trainer(config.engine, config.spark) as engine:
        return _register(config, engine, progress)


def _register(
    config: TrainConfig, engine: Trainer, progress: Callable[..., None] | None
) -> TrainRun:
    store, registry = EventStore(config.store), Registry(config.models_dir)
    folds = plan(store, config.feedback, config.split, config.train_share)
    catalogue = Catalogue.load(store.catalog_path)
    say = progress or (lambda *_, **__: None)
    say({"stage": "split", **folds.describe()}, force=True)

    # Validation: pick hyperparameters.
    val_train, val_test = folds.validation.train, folds.validation.test
    scored: dict[str, dict[str, Any]] = {}

    def score(model: str, params: dict[str, Any]) -> float:
        if val_test.n_users == 0:
            return float("nan")
        fitted = engine.fit(model, params, val_train, config.seed)
        report = evaluate(fitted, val_train, val_test, catalogue)
        scored[_trial_key(model, params)] = _overall(report)
        return float(report[config.metric])

    result = search(
        list(config.models), score, config.metric, config.budget_seconds, config.seed, say
    )
    validation = {
        m: scored[key]
        for m in config.models
        if (key := _trial_key(m, result.best(m).params)) in scored
    }

    # Test: measure each kind's best settings honestly.
    test_train, test = folds.test.train, folds.test.test
    offline: dict[str, dict[str, Any]] = {}
    for model in config.models:
        best = result.best(model)
        if test.n_users:
            fitted = engine.fit(model, best.params, test_train, config.seed)
            offline[model] = evaluate(fitted, test_train, test, catalogue)
        say(
            {
                "stage": "test",
                "model": model,
                config.metric: offline.get(model, {}).get(config.metric),
            },
            force=True,
        )

    # Release: learn from everything, register every kind.
    full = training_data(store, folds.last_ns + 1, config.feedback)
    provenance_base = _provenance_base(config, full, folds, result, store)
    versions: dict[str, str] = {}
    for model in config.models:
        best = result.best(model)
        started = time.monotonic()
        fitted = engine.fit(model, best.params, full, config.seed)
        provenance = {
            **provenance_base,
            "hyperparameters": fitted.params.to_dict(),
            "training_seconds": round(time.monotonic() - started, 3),
            "engine": engine.provenance(model),
            "validation": {config.metric: best.score},
            "offline_metrics": _overall(offline.get(model, {})),
        }
        versions[model] = registry.add(fitted, provenance)
        say({"stage": "release", "model": model, "version": versions[model]}, force=True)
    winner, reason = _choose(result, config, folds)
    if winner is None:
        say({"stage": "release", "warning": reason}, force=True)
    return TrainRun(config, folds, catalogue, result, validation, offline, versions, winner, reason)


def _trial_key(model: str, params: dict[str, Any]) -> str:
    return f"{model} {sorted(params.items())!r}"


def _overall(report: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in report.items() if k != "subpopulations"}


def _choose(result: SearchResult, config: TrainConfig, folds: Plan) -> tuple[str | None, str]:
    """(the kind to promote, why), or (None, why not) when no comparison is possible."""
    best = {m: result.best(m) for m in config.models}
    winner = max(best, key=lambda m: -1.0 if math.isnan(best[m].score) else best[m].score)
    if not folds.comparable or math.isnan(best[winner].score):
        return None, (
            f"no comparison possible: the {folds.kind} split has "
            f"{folds.validation.test.n_users} validation users ({folds.why}); "
            "the production model is left as it is"
        )
    tried = len(result.trials)
    return winner, (
        f"best {config.metric} on the {folds.kind} validation split "
        f"({folds.validation.test.n_users} users): {winner} {best[winner].score:.4f} "
        f"(popularity baseline {best[BASELINE].score:.4f}; {tried} candidates over "
        f"{len(best)} kinds)"
    )


def _provenance_base(
    config: TrainConfig,
    full: TrainingData,
    folds: Plan,
    result: SearchResult,
    store: EventStore,
) -> dict[str, Any]:
    checkpoint = store.checkpoint()
    return {
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "data": {
            "store": str(store.root),
            "store_batch": checkpoint.seq if checkpoint else 0,
            "from": iso(folds.first_ns),
            "to": iso(folds.last_ns),
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
            "split": folds.describe(),
            "split_settings": config.split.model_dump(),
            "budget_seconds": config.budget_seconds,
            "trials": result.to_json()["trials"],
        },
    }
