"""`movierec train`: train and register (movierec/training), then release the winner only
past the gate (movierec/release/gate.py) when a production model exists.

    no production yet        the winner is promoted, as training always did
    nothing comparable       every kind registered, none promoted; exit 3
    the gate passes          the winner is promoted; the history says why, with the evidence
    the gate refuses         the winner stays registered, production stays; the history
                             records the decision and its evidence; exit 4, and stderr says
                             which checks failed

The evidence of every gate decision is also kept beside the registry, in
MODELS/gates/<candidate>.json, and in the summary's `gate` object.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from pydantic import Field

from movierec.config import add_options, group
from movierec.progress import Progress
from movierec.registry.versions import Registry
from movierec.release.gate import GateConfig, Verdict, judge
from movierec.store.events import atomic_write
from movierec.training.pipeline import TrainConfig, TrainRun, register

NOTHING_PROMOTED = 3  # exit status: models registered, no comparison possible
CANDIDATE_REFUSED = 4  # exit status: the gate kept production; the candidate is registered
GATES_DIR = "gates"  # MODELS/gates/<candidate>.json: each gate decision's evidence


class TrainCommand(TrainConfig):
    gate: GateConfig = Field(
        default_factory=GateConfig,
        description="what the winner must show against production",
        json_schema_extra=group("gate_"),
    )
    quiet: bool = Field(False, description="no progress lines")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train and register models; promote the best past the gate")
    add_options(p, TrainCommand)
    p.set_defaults(handler=run_train)


def run_train(command: TrainCommand) -> int:
    try:
        summary = gated_train(command, command.gate, Progress("train", enabled=not command.quiet))
    except ValueError as error:  # a store without events, say
        print(f"movierec train: {error}", file=sys.stderr)
        return 2
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    if summary["promoted"]:
        return 0
    if summary["gate"]["judged"]:
        # Not a crash, but not a release either: say so where a scheduler looks.
        print(f"movierec train: {summary['reason']}", file=sys.stderr)
        return CANDIDATE_REFUSED
    # A training that could not compare anything failed at its job (production stays).
    print(f"movierec train: nothing promoted: {summary['reason']}", file=sys.stderr)
    return NOTHING_PROMOTED


def gated_train(
    config: TrainConfig,
    gate: GateConfig | None = None,
    progress: Callable[..., None] | None = None,
) -> dict[str, Any]:
    """Train, register every kind, and promote the winner if production has none or the
    gate passes; the summary's `gate` says what was decided and on what evidence."""
    say = progress or (lambda *_, **__: None)
    run = register(config, progress)
    return release(run, Registry(config.models_dir), gate or GateConfig(), say)


# Where a candidate that passed the gate goes instead of production (a canary): given the
# candidate and the gate's verdict, it starts the canary and returns what it started, or
# {"refused": why} when it could not (production then stays, recorded as a keep).
Canary = Callable[[str, Verdict], dict[str, Any]]


def release(
    run: TrainRun,
    registry: Registry,
    gate: GateConfig,
    say: Callable[..., None],
    canary: Canary | None = None,
) -> dict[str, Any]:
    production = registry.production()
    candidate = run.candidate
    if candidate is None:
        registry.keep(run.reason)
        summary = run.summary(production, False, run.reason)
        return {**summary, "gate": {"judged": False, "why": run.reason}}
    if production is None:
        registry.promote(candidate, run.reason)
        summary = run.summary(candidate, True, run.reason)
        why = "no production model yet: the winner is promoted without comparison"
        return {**summary, "gate": {"judged": False, "why": why}}
    verdict = judge(
        registry,
        candidate,
        production,
        run.folds,
        run.catalogue,
        gate,
        run.config.metric,
        run.config.seed,
        run.validation.get(str(run.winner)),
    )
    evidence = write_evidence(registry, verdict)
    say({"stage": "gate", "passed": verdict.passed, "summary": verdict.summary()}, force=True)
    if verdict.passed and canary is not None:
        started = canary(candidate, verdict)
        if started.get("refused"):  # a canary or experiment began while this one trained
            reason = (
                f"candidate {candidate} ({run.winner}) passed the gate but its canary could "
                f"not start ({started['refused']}); production {production} stays: "
                f"{verdict.summary()} (evidence: {GATES_DIR}/{evidence.name})"
            )
            registry.keep(reason, evidence=verdict.to_json(), decided_by="gate")
        else:
            reason = (
                f"candidate {candidate} ({run.winner}) passed the gate and serves a canary "
                f"({started.get('experiment')}); production {production} stays until the "
                f"canary decides: {verdict.summary()} (evidence: {GATES_DIR}/{evidence.name})"
            )
        summary = run.summary(registry.production(), False, reason)
        gate_json = {"judged": True, **verdict.to_json(), "evidence": str(evidence)}
        return {**summary, "gate": gate_json, "canary": started}
    if verdict.passed:
        reason = f"{run.reason}; {verdict.summary()} (evidence: {GATES_DIR}/{evidence.name})"
        registry.promote(candidate, reason, evidence=verdict.to_json(), decided_by="gate")
    else:
        reason = (
            f"candidate {candidate} ({run.winner}) not promoted, production {production} "
            f"stays: {verdict.summary()} (evidence: {GATES_DIR}/{evidence.name})"
        )
        registry.keep(reason, evidence=verdict.to_json(), decided_by="gate")
    summary = run.summary(registry.production(), verdict.passed, reason)
    return {**summary, "gate": {"judged": True, **verdict.to_json(), "evidence": str(evidence)}}


def write_evidence(registry: Registry, verdict: Verdict) -> Path:
    """The verdict as JSON beside the registry; versions themselves never change."""
    path = registry.root / GATES_DIR / f"{verdict.candidate}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, orjson.dumps(verdict.to_json(), option=orjson.OPT_INDENT_2))
    return path
