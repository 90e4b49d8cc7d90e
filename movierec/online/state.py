"""What `movierec online` keeps between runs, so a rerun over a grown store reads only what
is new: how far it read (the store's batch sequence, each answer-log file's offset), the
hourly sums already final, and the few rows still waiting for their future (answers the
site has not logged yet, requests whose conversion window is still open with the watches
that matched them so far).

    STATE/state.json        how far it read, counters, settings; written last
    STATE/<table>-<n>.parquet  the tables of generation n (state.json names n)

A run writes generation n+1 beside n and then replaces state.json atomically, so a crash
leaves the old state whole; the old generation's files are deleted afterwards (they are
this module's own)."""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from movierec.online.answers import ANSWER_SCHEMA
from movierec.store.events import atomic_write

_GROUP = [
    ("hour", pa.int64()),
    ("version", pa.string()),
    ("experiment", pa.string()),
    ("arm", pa.string()),
]
SCHEMAS: dict[str, pa.Schema] = {
    "pending_answers": ANSWER_SCHEMA,
    # status-200 requests the site logged whose answer record has not been read yet
    "awaiting": pa.schema(
        [
            ("id", pa.int64()),
            ("t", pa.int64()),
            ("user_id", pa.int32()),
            ("key", pa.string()),
            ("latency_ms", pa.int32()),
        ]
    ),
    # answered requests whose follow-up window is still open
    "open": pa.schema(
        [
            ("id", pa.int64()),
            ("t", pa.int64()),
            ("user_id", pa.int32()),
            ("key", pa.string()),
            *_GROUP,
        ]
    ),
    # watches and ratings of listed movies after an open request (stars -1 for a watch)
    "matched": pa.schema(
        [
            ("id", pa.int64()),
            ("movie_id", pa.string()),
            ("t", pa.int64()),
            ("minute", pa.int32()),
            ("stars", pa.int32()),
        ]
    ),
    # paired requests recent enough to lend their version to a request without a record
    "context": pa.schema(
        [("t", pa.int64()), ("version", pa.string()), ("experiment", pa.string())]
    ),
    "requests": pa.schema(
        [
            *_GROUP,
            ("requests", pa.int64()),
            ("answered", pa.int64()),
            ("ok", pa.int64()),
            ("errors", pa.int64()),
            ("timeouts", pa.int64()),
        ]
    ),
    "latency": pa.schema([*_GROUP, ("latency_ms", pa.int32()), ("n", pa.int64())]),
    # closed answered requests: what followed them
    "followups": pa.schema(
        [
            *_GROUP,
            ("closed", pa.int64()),
            ("followed", pa.int64()),
            ("rank_sum", pa.int64()),
            ("minutes_sum", pa.int64()),
            ("minutes_sq", pa.int64()),
            ("rated", pa.int64()),
            ("stars_sum", pa.int64()),
        ]
    ),
}


@dataclass
class Meta:
    generation: int = 0
    seq: int = 0  # the store's last batch read
    offsets: dict[str, int] = field(default_factory=dict)  # answer-log file -> bytes read
    watermark: int | None = None  # the latest event time seen (epoch us)
    next_id: int = 0
    counters: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


class OnlineState:
    def __init__(self, directory: Path | None) -> None:
        self.directory = directory
        self.meta = Meta()
        self.tables: dict[str, pa.Table] = {n: s.empty_table() for n, s in SCHEMAS.items()}
        if directory is not None and (directory / "state.json").exists():
            self.meta = Meta(**json.loads((directory / "state.json").read_text()))
            for name, schema in SCHEMAS.items():
                path = directory / f"{name}-{self.meta.generation}.parquet"
                self.tables[name] = pq.read_table(path, schema=schema)

    def check_settings(self, settings: dict[str, Any]) -> None:
        """A state made with other windows cannot be continued: its sums mean other things."""
        if self.meta.settings and self.meta.settings != settings:
            raise ValueError(
                f"the online state in {self.directory} was made with {self.meta.settings}, "
                f"not {settings}: give another --state directory (or delete that one)"
            )
        self.meta.settings = settings

    def save(self) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        old = self.meta.generation
        self.meta.generation = old + 1
        for name, table in self.tables.items():
            pq.write_table(
                table.cast(SCHEMAS[name]), self.directory / f"{name}-{self.meta.generation}.parquet"
            )
        atomic_write(self.directory / "state.json", json.dumps(asdict(self.meta)).encode())
        for name in SCHEMAS:
            with contextlib.suppress(FileNotFoundError):
                (self.directory / f"{name}-{old}.parquet").unlink()
