"""`movierec monitor`'s settings (flags, MOVIEREC_MONITOR_* variables, [monitor] of the file)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field

from movierec.config import RatingScale, Settings, option
from movierec.monitoring.history import DEFAULT_POINTS


class MonitorConfig(Settings):
    component: ClassVar[str] = "monitor"

    store: Path = Field(description="the event store ingestion writes")
    models_dir: Path = Field(
        description="the model registry directory (its answer log is MODELS/answers)",
        json_schema_extra=option("models"),
    )
    service: str = Field(
        "http://127.0.0.1:8082", description="the recommendation service's base URL"
    )
    ingest: str | None = Field(
        None, description="the ingestion's metrics URL (`movierec ingest --metrics-port`)"
    )
    port: int = Field(8090, ge=0, le=65535, description="port of the dashboard (0: any free)")
    host: str = Field("127.0.0.1", description="address the dashboard listens on")
    every: float = Field(5.0, gt=0, description="seconds between scrapes and online updates")
    slow_every: float = Field(
        300.0,
        gt=0,
        description="seconds between drift and feedback-loop reports (they read every "
        "event since the training window, so less often than the rest)",
    )
    audit_every: float = Field(
        3600.0,
        ge=0,
        description="seconds between audits (fairness, exposure, attacks, safety; in the "
        "background, as it evaluates the production model); 0: never",
    )
    state_dir: Path | None = Field(
        None,
        description="directory of the monitor's own state (history, alerts, online sums); "
        "when unset, MODELS/monitor",
        json_schema_extra=option("dir"),
    )
    points: int = Field(DEFAULT_POINTS, ge=10, description="points kept per scraped job")
    window_minutes: int = Field(
        30, ge=1, description="minutes after an answer in which a watch of it converts"
    )
    rating_scale: RatingScale = Field(5, description="stars on the site's rating scale")
    quiet: bool = Field(False, description="no progress lines")

    @property
    def directory(self) -> Path:
        return self.state_dir or self.models_dir / "monitor"
