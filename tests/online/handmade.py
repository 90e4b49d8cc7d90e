"""Small hand-made stores and registries for the online tests: a few exactly known rows,
committed as ingestion would, and a production version whose provenance names its window."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa

from movierec.store.events import Checkpoint, EventStore
from movierec.store.schema import RECOMMENDATION_SCHEMA
from movierec.times import DAY_NS
from tests.support.store import MIN, T0, write_rate, write_watch

__all__ = [
    "DAY_NS",
    "MIN",
    "T0",
    "commit",
    "register",
    "session",
    "write_rate",
    "write_recommendations",
    "write_watch",
]


def session(user: int, movie: str, start_ns: int, minutes: int) -> list[tuple[int, int, str, int]]:
    """Watch rows of one session: `minutes` minutes of `movie`, one a minute from start."""
    return [(start_ns + m * MIN, user, movie, m) for m in range(minutes)]


def write_recommendations(
    store: EventStore, seq: int, rows: list[tuple[int, int, int, list[str]]]
) -> None:
    """Store (time ns, user, status, items) recommendation rows as batch `seq`."""
    by_day: dict[int, list[dict]] = {}
    for time_ns, user, status, items in rows:
        record = {
            "time": time_ns,
            "user_id": user,
            "service": "127.0.0.1:8082",
            "status": status,
            "latency_ms": 12,
            "result": ", ".join(items) if status == 200 else "error",
            "items": items if status == 200 else [],
        }
        by_day.setdefault(time_ns // DAY_NS, []).append(record)
    for day, records in by_day.items():
        date = np.datetime64(int(day), "D").astype(str)
        table = pa.Table.from_pylist(records, schema=RECOMMENDATION_SCHEMA)
        store.write_table(f"events/recommendation/date={date}", seq, table)


def commit(store: EventStore, seq: int) -> None:
    store.state_dir.mkdir(parents=True, exist_ok=True)
    store.commit(Checkpoint(seq=seq))


def register(
    models: Path, version: str, data: dict | None, created: str = "20250101T000000Z"
) -> None:
    """A registry whose production version has this provenance `data` (no model files)."""
    folder = models / "versions" / version
    folder.mkdir(parents=True)
    provenance = {"version": version, "model": "popularity"}
    if data is not None:
        provenance["data"] = data
    (folder / "provenance.json").write_text(json.dumps(provenance))
    registry = {
        "production": version,
        "versions": [{"version": version, "model": "popularity", "created": created}],
        "history": [{"time": "2025-01-01T00:00:00+00:00", "from": None, "to": version}],
    }
    (models / "registry.json").write_text(json.dumps(registry))
