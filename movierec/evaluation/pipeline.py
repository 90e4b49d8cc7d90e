"""`movierec evaluate`: every model kind in the registry, re-learned with its registered
hyperparameters from the events before the cut and judged on the watches after it (the
registered artifacts learned from everything, so judging them directly would leak)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import orjson
from pydantic import Field

from movierec.catalog.reader import Catalogue
from movierec.config import Settings, option
from movierec.evaluation.offline import evaluate
from movierec.evaluation.plan import plan
from movierec.evaluation.report_html import render
from movierec.evaluation.split import SplitConfig
from movierec.features.feedback import FeedbackConfig
from movierec.models.kinds import fit
from movierec.registry.versions import Registry
from movierec.store.events import EventStore

METRIC = "ndcg@20"


class EvaluateConfig(Settings):
    """`movierec evaluate`'s settings (MOVIEREC_EVALUATE_* variables, [evaluate] of the file)."""

    component: ClassVar[str] = "evaluate"

    store: str = Field(description="the event store directory")
    models_dir: str = Field(
        description="the model registry directory", json_schema_extra=option("models")
    )
    train_share: float = Field(
        0.8, gt=0, lt=1, description="share of the time range before the test cut"
    )
    seed: int = Field(0, description="seed of every model's random start")
    split: SplitConfig = Field(default_factory=SplitConfig, description="what the test holds out")


def evaluate_registry(config: EvaluateConfig) -> dict[str, Any]:
    store, registry = EventStore(config.store), Registry(config.models_dir)
    latest = registry.latest_by_model()
    if not latest:
        raise ValueError(f"no models in {config.models_dir}: run movierec train first")
    production = registry.production()
    feedback = FeedbackConfig(
        **registry.provenance(production or next(iter(latest.values())))["data"].get("feedback", {})
    )
    folds = plan(store, feedback, config.split, config.train_share)
    train, test = folds.test.train, folds.test.test
    if test.n_users == 0:
        raise ValueError(f"no test users to evaluate on ({folds.kind} split: {folds.why})")
    catalogue = Catalogue.load(store.catalog_path)
    models: dict[str, Any] = {}
    for name, version in sorted(latest.items()):
        params = registry.provenance(version)["hyperparameters"]
        result = evaluate(fit(name, params, train, config.seed), train, test, catalogue)
        models[name] = {"version": version, "production": version == production, **result}
    best = max(models, key=lambda m: models[m][METRIC])
    return {
        "metric": METRIC,
        "best": best,
        "production": production,
        "split": {
            **folds.describe(),
            # The test fold, flat, as the report page shows it.
            **folds.test.describe(),
            "test_watches": int(test.relevant.nnz),
        },
        "models": models,
    }


def write_report(report: dict[str, Any], path: Path) -> Path:
    """The JSON report at path and the HTML page beside it (same name, .html)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY))
    page = path.with_suffix(".html")
    page.write_text(render(report))
    return page
