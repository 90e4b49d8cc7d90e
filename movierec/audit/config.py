"""`movierec audit`'s settings (flags, MOVIEREC_AUDIT_* variables, [audit] of the file)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from movierec.config import Settings, option
from movierec.registry.experiments import answer_log_dir


class AuditCommand(Settings):
    component: ClassVar[str] = "audit"

    store: Path = Field(description="the event store (the site's log, ingested)")
    models_dir: Path = Field(
        description="the model registry; its answers/ directory is the answer log",
        json_schema_extra=option("models"),
    )
    report: Path = Field(description="write the audit (JSON) here; the page goes beside it")
    answers: Path | None = Field(None, description="the answer log (MODELS/answers when unset)")
    html: Path | None = Field(
        None, description="write the page here (default: the report's path with .html)"
    )
    adult_for_unknown_age: bool = Field(
        False,
        description="the service lets users of unknown age see adult movies (audit against "
        "that rule instead of the default, which bars them)",
    )

    @property
    def answers_dir(self) -> Path:
        return self.answers or answer_log_dir(self.models_dir)

    @property
    def catalogue(self) -> Path:
        return self.store / "catalog.sqlite"

    @property
    def page(self) -> Path:
        return self.html or self.report.with_suffix(".html")
