"""`movierec audit`: every responsible-operation figure as one JSON report and a page.

Exit status 0 when every section was computed, 1 when one could not be (the report and
the page are still written, with the reason in `problems`), 2 on bad settings."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import orjson

from movierec.audit.config import AuditCommand
from movierec.audit.page import render
from movierec.audit.report import audit
from movierec.config import add_options
from movierec.progress import Progress
from movierec.store.events import atomic_write


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "audit", help="fairness, exposure, feedback loop, attacks and safety: JSON and a page"
    )
    add_options(p, AuditCommand)
    p.set_defaults(handler=run_audit)


def run_audit(command: AuditCommand) -> int:
    if not command.store.is_dir():
        print(f"movierec audit: no event store at {command.store}", file=sys.stderr)
        return 2
    if not command.models_dir.is_dir():
        print(f"movierec audit: no model registry at {command.models_dir}", file=sys.stderr)
        return 2
    progress = Progress("audit")

    def say(event: dict[str, Any]) -> None:
        trace = event.pop("trace", None)
        progress(event, force=True)
        if trace:
            print(trace, file=sys.stderr)

    report = audit(command, say)
    command.report.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(command.report, orjson.dumps(report, option=orjson.OPT_INDENT_2))
    atomic_write(command.page, render(report).encode())
    for problem in report["problems"]:
        what = problem.get("error") or problem.get("warning")
        print(f"movierec audit: {problem['section']}: {what}", file=sys.stderr)
    print(orjson.dumps({"report": str(command.report), "page": str(command.page),
                        "alerts": report["alerts"],
                        "problems": len(report["problems"])}).decode())  # fmt: skip
    return 1 if any("error" in p for p in report["problems"]) else 0
