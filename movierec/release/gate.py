"""The gate a trained candidate passes before it replaces the production model.

Both are scored on the same split: the training run's validation fold (learn before the
validation cut, judged on the relevance held out after it). How production is scored
depends on what it learned from:

    as_is    production's data ends before the validation cut (a time split): it never
             saw the held-out period, so its artifact is scored as it serves
    recipe   production's data reaches past the cut, or the split is per user (whose
             held-out interactions are each user's latest, spread over all time):
             scoring the artifact would let it be judged on what it learned from. Its
             kind is refitted with its recorded hyperparameters on the same training
             fold as the candidate's, and that recipe is scored instead

The candidate is always its recipe on the validation fold (its artifact learned from
everything). It passes only if its score is at least (1 - margin) x production's and every
sanity check (movierec/release/checks.py) passes. A production model that cannot be scored
fails the gate loudly: production stays until someone looks.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

import numpy as np
from pydantic import Field

from movierec.catalog.reader import Catalogue
from movierec.config import SettingsGroup
from movierec.evaluation.metrics import summarize
from movierec.evaluation.offline import demographics, evaluate
from movierec.evaluation.plan import Plan
from movierec.models.base import LIST_LENGTH, Recommender
from movierec.models.kinds import fit, load_model
from movierec.registry.versions import Registry
from movierec.release.checks import Check, answer_delay, coverage, full_lists, snapshot_build
from movierec.serving.snapshot import build
from movierec.times import iso


class GateConfig(SettingsGroup):
    """What a candidate must show against production (`gate` settings of `movierec train`)."""

    margin: float = Field(
        0.02,
        ge=0,
        lt=1,
        description="relative shortfall of the candidate's validation score below "
        "production's that still passes (0.02: at least 98% of production's)",
    )
    coverage_floor: float = Field(
        0.5,
        ge=0,
        le=1,
        description="least catalogue coverage of the candidate's lists, as a share of "
        "production's on the same users",
    )
    build_seconds: float = Field(
        300.0, gt=0, description="longest the candidate's serving snapshot may take to build"
    )
    answer_delay_ms: float = Field(
        50.0,
        ge=0,
        description="longest answer delay the candidate's model may declare (the site "
        "gives up after 600 ms)",
    )


Comparison = Literal["as_is", "recipe", "none"]  # none: production could not be scored


@dataclass
class Verdict:
    candidate: str
    production: str
    metric: str
    comparison: Comparison
    why: str
    scores: dict[str, float | None]
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def summary(self) -> str:
        """One line: the decision, the scores and whatever failed."""
        c, p = self.scores["candidate"], self.scores["production"]
        shown = f"{self.metric} {_num(c)} vs production's {_num(p)} ({self.comparison})"
        if self.passed:
            return f"gate passed: {shown}"
        return f"gate refused: {shown}; failed: " + "; ".join(
            f"{k.name} ({k.detail})" for k in self.failed
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "candidate": self.candidate,
            "production": self.production,
            "passed": self.passed,
            "metric": self.metric,
            "comparison": {"kind": self.comparison, "why": self.why},
            "scores": self.scores,
            "checks": [c.to_json() for c in self.checks],
        }


def _num(value: float | None) -> str:
    return "n/a" if value is None or not math.isfinite(value) else f"{value:.4f}"


def comparison_for(provenance: dict[str, Any], folds: Plan) -> tuple[Comparison, str]:
    """How production can be scored on the fold without being judged on what it learned."""
    to = provenance.get("data", {}).get("to")
    if folds.kind != "time":
        return "recipe", (
            f"the {folds.kind} split holds out each user's latest interactions, spread over "
            f"the whole time range, which production's data (to {to}) covers"
        )
    cut = folds.cuts["validation_cut"]
    if to is None:
        return "recipe", "production's provenance does not say when its data ends"
    # `to` is to the second: production may hold events up to a second after it.
    ends_ns = int((datetime.fromisoformat(to).timestamp() + 1) * 1e9)
    shown = iso(cut)
    if ends_ns <= cut:
        return "as_is", (
            f"production's data ends at {to}, before the validation cut {shown}: "
            "its artifact never saw the held-out period"
        )
    return "recipe", (
        f"production's data reaches {to}, past the validation cut {shown}: scored as it "
        "is, it would be judged on what it learned from, so its kind and hyperparameters "
        "are refitted on the candidate's training fold"
    )


def score_as_is(model: Recommender, folds: Plan, catalogue: Catalogue) -> dict[str, Any]:
    """A fitted artifact's lists for the validation users, in the fold's item space."""
    train, test = folds.validation.train, folds.validation.test
    users = np.asarray(test.user_ids, dtype=np.int64)
    lists = model.recommend(users, LIST_LENGTH)
    profiles = getattr(model, "recommend_for_profiles", None)
    new = model.history.rows(users) < 0
    if profiles is not None and new.any():
        lists[new] = profiles(*demographics(catalogue, users[new]), LIST_LENGTH)
    position = {str(item): i for i, item in enumerate(train.item_ids)}
    lookup = np.array([position.get(str(i), -1) for i in model.item_ids] + [-1], dtype=np.int64)
    mapped = np.where(lists >= 0, lookup[np.where(lists >= 0, lists, -1)], -1)
    popularity = np.bincount(train.matrix.indices, minlength=train.n_items)
    return summarize(mapped, test.relevant, train.n_items, popularity, LIST_LENGTH)


def score_recipe(
    provenance: dict[str, Any], folds: Plan, catalogue: Catalogue, seed: int
) -> dict[str, Any]:
    """A version's kind and hyperparameters refitted on the validation fold, scored."""
    train, test = folds.validation.train, folds.validation.test
    fitted = fit(provenance["model"], dict(provenance["hyperparameters"]), train, seed)
    report = evaluate(fitted, train, test, catalogue)
    return {k: v for k, v in report.items() if k != "subpopulations"}


def judge(
    registry: Registry,
    candidate: str,
    production: str,
    folds: Plan,
    catalogue: Catalogue,
    config: GateConfig,
    metric: str = "ndcg@20",
    seed: int = 0,
    candidate_validation: dict[str, Any] | None = None,
) -> Verdict:
    """Candidate against production on the fold's validation split, and sanity checks.

    `candidate_validation` is the candidate's recipe already scored on this fold (the
    training run's search did it); without it the recipe is refitted here."""
    if not folds.comparable:
        raise ValueError("the split has no validation users: nothing to compare on")
    mine = candidate_validation or score_recipe(
        registry.provenance(candidate), folds, catalogue, seed
    )
    theirs: dict[str, Any] = {}
    try:
        provenance = registry.provenance(production)
        kind, why = comparison_for(provenance, folds)
        if kind == "as_is":
            theirs = score_as_is(load_model(registry.model_dir(production)), folds, catalogue)
        else:
            theirs = score_recipe(provenance, folds, catalogue, seed)
    except Exception as error:  # any defect of production's record fails the gate, loudly
        kind, why = "none", f"production could not be scored: {type(error).__name__}: {error}"
    verdict = Verdict(
        candidate,
        production,
        metric,
        kind,
        why,
        {
            "candidate": mine.get(metric),
            "production": theirs.get(metric),
            "margin": config.margin,
            "candidate_coverage": mine.get("coverage"),
            "production_coverage": theirs.get("coverage"),
            "validation_users": folds.validation.test.n_users,
        },
    )
    verdict.checks.append(_score_check(mine.get(metric), theirs.get(metric), config, why))
    verdict.checks.extend(_snapshot_checks(registry, candidate, config))
    verdict.checks.append(
        coverage(
            float(mine.get("coverage", math.nan)),
            float(theirs.get("coverage", math.nan)),
            config.coverage_floor,
        )
    )
    return verdict


def _score_check(mine: float | None, theirs: float | None, config: GateConfig, why: str) -> Check:
    if mine is None or theirs is None or not (math.isfinite(mine) and math.isfinite(theirs)):
        return Check("score", mine, None, False, f"no comparison: {why}")
    threshold = theirs * (1 - config.margin) if theirs > 0 else theirs
    return Check(
        "score",
        round(mine, 6),
        round(threshold, 6),
        mine >= threshold,
        f"{mine:.4f} against production's {theirs:.4f} less {config.margin:.0%}",
    )


def _snapshot_checks(registry: Registry, candidate: str, config: GateConfig) -> list[Check]:
    """Build the candidate's serving snapshot as the service would, and read its lists."""
    coldstart = registry.latest_by_model().get("coldstart")
    started = time.monotonic()
    try:
        snapshot = build(registry, candidate, coldstart)
    except Exception as error:  # an artifact is data: any defect is a failed check
        spent = time.monotonic() - started
        failed = f"{type(error).__name__}: {error}"
        return [
            snapshot_build(spent, config.build_seconds, failed),
            Check("full_lists", None, 0.0, False, f"no snapshot to read lists from ({failed})"),
            Check("answer_delay", None, config.answer_delay_ms, False, f"no snapshot ({failed})"),
        ]
    return [
        snapshot_build(snapshot.built_seconds, config.build_seconds, None),
        full_lists(snapshot),
        answer_delay(snapshot.answer_delay * 1000, config.answer_delay_ms),
    ]
