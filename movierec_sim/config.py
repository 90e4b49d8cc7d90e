"""How the simulated site runs: `SimConfig`, the simulation's own settings (the world's are
`WorldConfig`, the API's faults `ApiFaults`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import Field, field_validator

from movierec.config import RatingScale, SettingsGroup, option
from movierec_sim.faults import FaultConfig
from movierec_sim.world import DEFAULT_START


class SimConfig(SettingsGroup):
    """How the site runs: when it stops, how fast, whom its users call, how it logs."""

    seed: int = Field(
        0, description="seed of the users' choices", json_schema_extra=option(derived=True)
    )
    events: int | None = Field(None, ge=0, description="stop after this many log lines")
    days: float | None = Field(None, gt=0, description="stop after this many simulated days")
    start: datetime = Field(DEFAULT_START, description="simulated start time (UTC unless given)")
    speed: float = Field(
        0.0, ge=0, description="simulated seconds per real second (0: as fast as possible)"
    )
    tick_seconds: int | None = Field(
        None,
        ge=1,
        le=3600,
        description="simulated seconds per step (none: from --speed and the visit rate)",
        json_schema_extra=option("tick"),
    )
    service: str = Field(
        "http://127.0.0.1:8082", description="the recommendation service users call"
    )
    timeout_ms: int = Field(600, ge=1, description="the site gives up on a call after this")
    concurrency: int = Field(64, ge=1, description="recommendation calls in flight")
    rating_scale: RatingScale = Field(5, description="stars on the site's rating scale")
    result_separator: Literal[", ", ","] = Field(
        ", ",
        description="how the site joins result ids in its log",
        json_schema_extra=option("separator"),
    )
    oracle_share: float | None = Field(
        None,
        ge=0,
        le=1,
        description="share of calls also judged with the oracle's list (none: all visits on "
        "small catalogues, fewer on big ones)",
    )
    request_faults: float = Field(
        0.0, ge=0, description="invalid recommendation requests sent per real call"
    )
    faults: FaultConfig = Field(
        default_factory=FaultConfig,
        description="dirt in the log",
        json_schema_extra=option(derived=True),
    )

    @field_validator("start")
    @classmethod
    def _utc_unless_given(cls, start: datetime) -> datetime:
        return start if start.tzinfo else start.replace(tzinfo=UTC)

    @property
    def timeout(self) -> float:
        """Seconds the site waits for an answer."""
        return self.timeout_ms / 1000


def _share(default: float, description: str, **extra: Any) -> Any:
    return Field(default, ge=0, le=1, description=description, **extra)


class ApiFaults(SettingsGroup):
    """The site API's fault switches; all off by default. Shares are per API request."""

    # Added latency: latency_ms + uniform(0, latency_jitter_ms), on latency_share of requests.
    latency_ms: float = Field(0.0, ge=0, description="added latency, ms")
    latency_jitter_ms: float = Field(
        0.0, ge=0, description="random extra latency, ms", json_schema_extra=option("api_jitter_ms")
    )
    latency_share: float = _share(1.0, "share of requests delayed")
    error_share: float = _share(0.0, "share answered 5xx")
    error_statuses: tuple[int, ...] = Field(
        (500, 502, 503), min_length=1, description="the 5xx statuses errors are drawn from"
    )
    # Requests never answered; after hang_max_s the connection is dropped to free resources.
    hang_share: float = _share(0.0, "share never answered")
    hang_max_s: float = Field(30.0, ge=0, description="seconds before a hung request is dropped")
    missing_share: float = _share(0.0, "share with fields missing")
    null_share: float = _share(0.0, "share with fields set to null")
    # Token bucket over all clients; 0 = unlimited. Burst 0 = one second's worth.
    rate_limit_rps: float = Field(
        0.0, ge=0, description="requests/s (0: none)", json_schema_extra=option("api_rate_limit")
    )
    rate_limit_burst: float = Field(0.0, ge=0, description="burst (0: one second's worth)")
    seed: int = Field(0, description="seed of the faults", json_schema_extra=option(derived=True))

    @field_validator("error_statuses")
    @classmethod
    def _server_errors(cls, statuses: tuple[int, ...]) -> tuple[int, ...]:
        if not all(500 <= s <= 599 for s in statuses):
            raise ValueError("error_statuses must be a non-empty list of 5xx codes")
        return statuses

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    def updated(self, changes: Mapping[str, Any]) -> ApiFaults:
        """A copy with `changes` applied, type-checked (for JSON from the control endpoint:
        numbers must be numbers, not text that looks like one)."""
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in type(self).model_fields:
                raise ValueError(f"unknown fault setting {name!r}")
            if name == "error_statuses":
                if not isinstance(value, list | tuple) or any(type(v) is not int for v in value):
                    raise ValueError("error_statuses must be a list of integers")
                clean[name] = tuple(value)
                continue
            if name == "seed":
                if type(value) is not int:
                    raise ValueError("seed must be an integer")
            elif type(value) not in (int, float):
                raise ValueError(f"{name} must be a number")
            clean[name] = value
        return type(self).model_validate({**self.model_dump(), **clean})
