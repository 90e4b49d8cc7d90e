"""One audit: every section computed on its own, so one that cannot run (no answer log, no
catalogue, no production model) says why in its place and in `problems`, and the others
still report. Nothing is read but the store, the catalogue cache, the registry and the
answer log; nothing is written but the report.

    report = audit(AuditCommand(store=..., models_dir=..., report=...))
    report["fairness"], report["exposure"], report["feedback_loop"], report["attacks"],
    report["safety"]; report["alerts"] holds the figures the monitor's rules read
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from movierec.audit import sections as parts
from movierec.audit.config import AuditCommand
from movierec.online.loop import loop_report

Section = Callable[[AuditCommand], dict[str, Any]]


def feedback_loop(command: AuditCommand) -> dict[str, Any]:
    return loop_report(command.store)


def sections() -> dict[str, Section]:
    """The report's sections, in the order they are written and shown."""
    return {
        "fairness": parts.fairness,
        "exposure": parts.exposure,
        "feedback_loop": feedback_loop,
        "attacks": parts.attacks,
        "safety": parts.safety,
    }


def audit(
    command: AuditCommand,
    say: Callable[[dict[str, Any]], None] = lambda _: None,
) -> dict[str, Any]:
    """Every section (a failed one as {"error": ...}), the problems, and the alert figures."""
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "store": str(command.store),
        "models": str(command.models_dir),
        "answers": str(command.answers_dir),
    }
    problems: list[dict[str, str]] = []
    for name, section in sections().items():
        started = time.monotonic()
        try:
            report[name] = section(command)
        except Exception as error:  # one section's failure is reported, not fatal
            report[name] = {"error": f"{type(error).__name__}: {error}"}
            problems.append({"section": name, "error": report[name]["error"]})
            say({"section": name, "error": report[name]["error"], "trace": traceback.format_exc()})
            continue
        for warning in report[name].get("warnings", []):
            problems.append({"section": name, "warning": str(warning)})
        say({"section": name, "seconds": round(time.monotonic() - started, 2)})
    report["problems"] = problems
    report["alerts"] = alert_figures(report)
    return report


def alert_figures(report: dict[str, Any]) -> dict[str, float | None]:
    """What the monitor's audit rules read (movierec/monitoring/rules.py, AUDIT_SERIES);
    None where the section could not say."""
    fairness = report.get("fairness") or {}
    attacks = report.get("attacks") or {}
    safety = report.get("safety") or {}
    ratios = [
        fairness.get(part, {}).get("worst_ratio")
        for part in ("offline", "online")
        if isinstance(fairness.get(part), dict)
    ]
    known = [r for r in ratios if r is not None]
    shilling = (attacks.get("shilling") or {}).get("campaigns")
    scraping = (attacks.get("scraping") or {}).get("detections")
    violations = safety.get("violations")
    return {
        "fairness_worst_ratio": min(known) if known else None,
        "shilling_suspects": None if shilling is None else float(len(shilling)),
        "scraping_detections": None if scraping is None else float(len(scraping)),
        "adult_violations": None if violations is None else float(violations),
    }
