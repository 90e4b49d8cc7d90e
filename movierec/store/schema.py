"""Arrow schemas of the stored tables; readers and writers share them."""

from __future__ import annotations

import pyarrow as pa

KINDS = ("watch", "rate", "recommendation")

TIME = pa.timestamp("ns")
MOVIE = pa.dictionary(pa.int32(), pa.string())

WATCH_SCHEMA = pa.schema(
    [("time", TIME), ("user_id", pa.int32()), ("movie_id", MOVIE), ("minute", pa.int32())]
)
RATE_SCHEMA = pa.schema(
    [("time", TIME), ("user_id", pa.int32()), ("movie_id", MOVIE), ("rating", pa.int8())]
)
RECOMMENDATION_SCHEMA = pa.schema(
    [
        ("time", TIME),
        ("user_id", pa.int32()),
        ("service", pa.string()),
        ("status", pa.int16()),
        ("latency_ms", pa.int32()),
        ("result", pa.string()),
        ("items", pa.list_(pa.string())),
    ]
)
QUARANTINE_SCHEMA = pa.schema(
    [("raw", pa.binary()), ("reason", pa.string()), ("origin", pa.string()), ("seq", pa.int64())]
)
PROVISIONAL_SCHEMA = pa.schema(
    [
        ("raw", pa.binary()),
        ("origin", pa.string()),
        ("seq", pa.int64()),
        ("kind", pa.dictionary(pa.int32(), pa.string())),
        ("movie_id", MOVIE),
    ]
)
SCHEMAS = {"watch": WATCH_SCHEMA, "rate": RATE_SCHEMA, "recommendation": RECOMMENDATION_SCHEMA}
EMPTY_TABLES = {
    **{kind: schema.empty_table() for kind, schema in SCHEMAS.items()},
    "provisional": PROVISIONAL_SCHEMA.empty_table(),
}
