"""Each section of the audit from the settings of `movierec audit`: which figures, over
which data. A part that cannot be computed (no production model, no recommendations in
the log yet) is reported in its place with the reason, and the rest of the section goes
on."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from movierec.audit.attacks import shilling_report
from movierec.audit.config import AuditCommand
from movierec.audit.exposure import exposure as exposure_figures
from movierec.audit.fairness import offline_fairness, online_fairness
from movierec.audit.safety import safety_section
from movierec.audit.scraping import scraping_report


def _part(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return work()
    except (ValueError, OSError) as error:  # data not there (yet): said, not fatal
        return {"error": f"{type(error).__name__}: {error}"}


def _warnings(parts: dict[str, dict[str, Any]]) -> list[str]:
    out: list[str] = []
    for name, part in parts.items():
        if "error" in part:
            out.append(f"{name}: {part['error']}")
        else:
            out += [f"{name}: {warning}" for warning in part.get("warnings", [])]
    return out


def fairness(command: AuditCommand) -> dict[str, Any]:
    parts = {
        "offline": _part(lambda: offline_fairness(command.store, command.models_dir)),
        "online": _part(lambda: online_fairness(command.store)),
    }
    return {**parts, "warnings": _warnings(parts)}


def exposure(command: AuditCommand) -> dict[str, Any]:
    return exposure_figures(command.store)


def attacks(command: AuditCommand) -> dict[str, Any]:
    parts = {
        "shilling": _part(lambda: shilling_report(command.store)),
        "scraping": _part(lambda: scraping_report(command.answers_dir, command.store)),
    }
    return {**parts, "warnings": _warnings(parts)}


def safety(command: AuditCommand) -> dict[str, Any]:
    return safety_section(command.answers_dir, command.catalogue, command.adult_for_unknown_age)
