"""`movierec evaluate`. (`movierec train` is composed above the roles, in
movierec/release/train.py: training, then the gate against production.)"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import orjson
from pydantic import Field

from movierec.config import add_options
from movierec.evaluation.pipeline import EvaluateConfig, evaluate_registry, write_report


class EvaluateCommand(EvaluateConfig):
    report: Path = Field(description="JSON report (the HTML page beside it)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    e = sub.add_parser("evaluate", help="offline evaluation of the registered models")
    add_options(e, EvaluateCommand)
    e.set_defaults(handler=run_evaluate)


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
