"""`movierec train` and `movierec evaluate`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson
from pydantic import Field

from movierec.config import add_options
from movierec.evaluation.pipeline import EvaluateConfig, evaluate_registry, write_report
from movierec.progress import Progress
from movierec.training.pipeline import TrainConfig, train

NOTHING_PROMOTED = 3  # exit status: models registered, production left as it was


class TrainCommand(TrainConfig):
    quiet: bool = Field(False, description="no progress lines")


class EvaluateCommand(EvaluateConfig):
    report: Path = Field(description="JSON report (the HTML page beside it)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train, evaluate and register models from the store")
    add_options(p, TrainCommand)
    p.set_defaults(handler=run_train)
    e = sub.add_parser("evaluate", help="offline evaluation of the registered models")
    add_options(e, EvaluateCommand)
    e.set_defaults(handler=run_evaluate)


def run_train(command: TrainCommand) -> int:
    try:
        summary = train(command, Progress("train", enabled=not command.quiet))
    except ValueError as error:  # a store without events, say
        print(f"movierec train: {error}", file=sys.stderr)
        return 2
    print(orjson.dumps(summary, option=orjson.OPT_INDENT_2).decode())
    if not summary["promoted"]:
        # A training that could not compare anything failed at its job: say so, and exit
        # non-zero so a scheduler notices (the registry kept the model that serves now).
        print(f"movierec train: nothing promoted: {summary['reason']}", file=sys.stderr)
        return NOTHING_PROMOTED
    return 0


def run_evaluate(command: EvaluateCommand) -> int:
    try:
        report = evaluate_registry(command)
    except ValueError as error:
        print(f"movierec evaluate: {error}", file=sys.stderr)
        return 2
    page = write_report(report, command.report)
    summary = {
        name: {k: result[k] for k in ("ndcg@20", "recall@20", "coverage")}
        for name, result in report["models"].items()
    }
    print(orjson.dumps({"best": report["best"], "models": summary, "html": str(page)}).decode())
    return 0
