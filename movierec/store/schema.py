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

SESSION_GAP_MINUTES = 30

# A watch session: one user's minutes of one movie, with no gap over 30 minutes.
SESSIONS_VIEW = f"""
CREATE OR REPLACE VIEW sessions AS
WITH ordered AS (
    SELECT user_id, movie_id, time, minute,
           CASE WHEN lag(time) OVER w IS NULL
                  OR time - lag(time) OVER w > INTERVAL {SESSION_GAP_MINUTES} MINUTE
                THEN 1 ELSE 0 END AS starts
    FROM watch
    WINDOW w AS (PARTITION BY user_id, movie_id ORDER BY time, minute)
), numbered AS (
    SELECT *, sum(starts) OVER (PARTITION BY user_id, movie_id ORDER BY time, minute
                                ROWS UNBOUNDED PRECEDING) AS session
    FROM ordered
)
SELECT user_id, movie_id, session,
       min(minute) AS first_minute, max(minute) AS last_minute,
       count(DISTINCT minute) AS minutes_watched,
       min(time) AS start_time, max(time) AS end_time
FROM numbered
GROUP BY user_id, movie_id, session
"""
