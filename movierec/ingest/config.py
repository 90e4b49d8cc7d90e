"""What one ingestion run reads, where it writes, and how hard it checks: `movierec ingest`'s
settings (flags, MOVIEREC_INGEST_* variables, the [ingest] table of the config file)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from movierec.config import RatingScale, Settings
from movierec.quality.checks import FUTURE_TOLERANCE_NS
from movierec.quality.dedup import DEFAULT_WINDOW
from movierec.stream import parse_stream_url


class IngestConfig(Settings):
    component: ClassVar[str] = "ingest"

    source: str = Field(description="the event stream: file://PATH or kafka://HOST:PORT/TOPIC")
    store: str = Field(description="the event store directory")
    group: str = Field("movierec-ingest", min_length=1, description="Kafka consumer group")
    api: str | None = Field(
        "http://127.0.0.1:8080",
        description="the site's user/movie API ('' for none: catalogue checks wait)",
    )
    follow: bool = Field(False, description="keep up with the live stream")
    batch_lines: int = Field(500_000, ge=1, description="lines per batch")
    max_wait: float = Field(
        1.0, ge=0, description="seconds a partial batch may wait for more lines (--follow)"
    )
    future_tolerance: float = Field(
        FUTURE_TOLERANCE_NS / 1e9,
        ge=0,
        description="seconds a line's time may lie past its arrival before it is rejected "
        "as from the future (arrival: the Kafka message timestamp, or when a file was read)",
    )
    rating_scale: RatingScale = Field(5, description="stars on the site's rating scale")
    dedup_window: int = Field(
        DEFAULT_WINDOW, ge=1, description="recent lines an exact duplicate is looked for among"
    )
    catalogue_wait: float = Field(
        30.0, ge=0, description="seconds the catalogue may take to fill in at the end of a run"
    )
    api_rate_limit: float = Field(50.0, ge=0, description="API requests/s (0: no limit)")
    api_timeout: float = Field(2.0, gt=0, description="seconds an API request may take")
    metrics_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="serve Prometheus metrics on 127.0.0.1:PORT/metrics (0: any free port)",
    )
    rebuild: bool = Field(
        False, description="forget stored events and read the stream again from the start"
    )
    partitioned: bool = Field(
        False,
        description="share the Kafka topic's partitions with the group's other workers; "
        "each partition's events go to its own part of the store (STORE/parts/<partition>)",
    )
    owner_wait: float = Field(
        60.0,
        gt=0,
        description="seconds a worker given a partition waits for its previous owner to "
        "let go of the part (--partitioned)",
    )

    @field_validator("source")
    @classmethod
    def _known_stream(cls, source: str) -> str:
        parse_stream_url(source)  # ValueError naming the accepted forms
        return source

    @model_validator(mode="after")
    def _partitioned_needs_kafka(self) -> IngestConfig:
        if self.partitioned and parse_stream_url(self.source).scheme != "kafka":
            raise ValueError(
                "--partitioned shares a Kafka topic's partitions: the source "
                f"must be kafka://HOST:PORT/TOPIC, not {self.source!r}"
            )
        if self.partitioned and self.rebuild:
            raise ValueError(
                "--rebuild cannot forget the parts other workers write: stop every "
                "worker of the group, then start them on a new store"
            )
        return self

    @field_validator("api")
    @classmethod
    def _empty_is_none(cls, api: str | None) -> str | None:
        return api or None
