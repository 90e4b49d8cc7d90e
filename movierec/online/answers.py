"""Reading the service's answer log (JSON lines, one file per hour) from where the last read
stopped: each file's byte offset is remembered, and only whole lines are taken, so a file
the service is still appending to is read again from its last complete line next time."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pyarrow as pa

ANSWER_SCHEMA = pa.schema(
    [
        ("served_us", pa.int64()),  # the service's clock, epoch microseconds
        ("user_id", pa.int32()),
        ("key", pa.string()),  # the list as the site logs it, ids joined by ","
        ("version", pa.string()),
        ("experiment", pa.string()),
        ("arm", pa.string()),
        ("source", pa.string()),
    ]
)


def list_key(items: str) -> str:
    """A list's join key: ids without spaces, comma-separated (the site writes ", ")."""
    return ",".join(part.strip() for part in items.split(",") if part.strip())


def read_new(directory: Path, offsets: dict[str, int]) -> tuple[pa.Table, dict[str, int], int]:
    """Answer records written since `offsets`; the new offsets; lines that did not parse."""
    columns: dict[str, list] = {name: [] for name in ANSWER_SCHEMA.names}
    bad = 0
    new_offsets = dict(offsets)
    if not directory.is_dir():
        return ANSWER_SCHEMA.empty_table(), new_offsets, 0
    for path in sorted(directory.glob("answers-*.jsonl")):
        start = offsets.get(path.name, 0)
        size = path.stat().st_size
        if size <= start:
            continue
        with open(path, "rb") as handle:
            handle.seek(start)
            data = handle.read(size - start)
        end = data.rfind(b"\n") + 1  # whole lines only
        new_offsets[path.name] = start + end
        for line in data[:end].splitlines():
            if not line.strip():
                continue
            try:
                record = orjson.loads(line)
                row = (
                    _micros(record["time"]),
                    int(record["user"]),
                    list_key(record["items"]),
                    str(record["version"]),
                    record.get("experiment"),
                    record.get("arm"),
                    record.get("source"),
                )
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                bad += 1  # counted in the report, never fatal
                continue
            for name, value in zip(ANSWER_SCHEMA.names, row, strict=True):
                columns[name].append(value)
    table = pa.table(
        {name: pa.array(columns[name], ANSWER_SCHEMA.field(name).type) for name in columns}
    )
    return table, new_offsets, bad


def _micros(text: str) -> int:
    return int(np.datetime64(text.replace("+00:00", "")).astype("datetime64[us]").astype(np.int64))
