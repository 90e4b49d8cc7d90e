"""`movierec serve`'s settings (flags, MOVIEREC_SERVE_* variables, [serve] of the file)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import Field, field_validator

from movierec.config import RatingScale, Settings, option
from movierec.quality.checks import FUTURE_TOLERANCE_NS
from movierec.serving.shard import MAX_SHARDS, Shard
from movierec.stream import parse_stream_url


class ServeConfig(Settings):
    component: ClassVar[str] = "serve"

    models_dir: Path = Field(
        description="the model registry directory", json_schema_extra=option("models")
    )
    port: int = Field(8082, ge=0, le=65535, description="port to listen on (0: any free one)")
    host: str = Field(
        "127.0.0.1",
        description="address to listen on: this machine only by default; 0.0.0.0 (every "
        "interface) exposes /metrics and /healthz too, so choose it deliberately",
    )
    store: Path | None = Field(
        None, description="event store whose catalogue gives new users' demographics"
    )
    source: str | None = Field(
        None, description="event stream to follow for fresh lists (file://PATH, kafka://...)"
    )
    rating_scale: RatingScale = Field(
        5, description="stars on the site's rating scale (of the ratings in --source)"
    )
    future_tolerance: float = Field(
        FUTURE_TOLERANCE_NS / 1e9,
        ge=0,
        description="seconds a line in --source may lie past its arrival before it is "
        "ignored as from the future (the same rule as ingestion)",
    )
    telemetry: Path | None = Field(
        None,
        description="directory for the log of answers (default: MODELS/answers, where "
        "`movierec online` and `movierec experiment report` look for it)",
    )
    sample: float = Field(1.0, ge=0, le=1, description="share of answers logged")
    poll: float = Field(1.0, gt=0, description="seconds between registry checks")
    threads: int = Field(1, ge=1, description="threads for building lists")
    explore_slots: int = Field(
        0,
        ge=0,
        le=20,
        description="positions of every answer's 20, the last ones, given to movies outside "
        "the head, drawn per user and day (exploration slots; an experiment arm may set "
        "its own)",
    )
    explore_head: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="share of a model's movies, those its lists show most, that exploration "
        "slots never draw",
    )
    adult_for_unknown_age: bool = Field(
        False,
        description="recommend movies the catalogue marks adult to users of unknown age "
        "(not in the catalogue, or without an age); minors never get them either way",
    )

    shard: str = Field(
        "0/1",
        description=f"I/N: serve shard I (from 0) of N, the users whose id hashes there "
        f"(serving/shard.py, the same split as the nginx router's); N up to {MAX_SHARDS}; "
        "0/1: every user",
        json_schema_extra=option("shard"),
    )

    @field_validator("shard")
    @classmethod
    def _shard_spec(cls, shard: str) -> str:
        return str(Shard.parse(shard))  # ValueError naming the form

    @field_validator("source")
    @classmethod
    def _known_stream(cls, source: str | None) -> str | None:
        if source:
            parse_stream_url(source)  # ValueError naming the accepted forms
        return source or None
