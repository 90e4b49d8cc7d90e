"""One incremental pass of the online figures: new log lines and new answer records in,
the state's sums and waiting rows out (movierec/online/state.py says what is kept).

1. Attribution. Each status-200 request the site logged is paired with our answer record
   of the same user and the same list, the k-th such request with the k-th such record
   (the two clocks differ — a simulated site runs faster than ours — so order, not time,
   pairs them). A request with no record (a timeout, a refused call, an unsampled answer)
   takes the version and experiment of the latest paired request before it, and, within
   an experiment, its arm from the user id's hash: the split the service itself used.
2. Follow-up. Watches and ratings of a listed movie by the same user after an answered
   request are kept with it until its windows close: the conversion window (30 minutes),
   the follow window for minutes watched and stars (4 hours), plus an allowance for lines
   logged late. Then its outcome joins the hourly sums and its rows are forgotten.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from movierec.online.answers import read_new
from movierec.online.state import SCHEMAS, OnlineState
from movierec.registry.experiments import Experiment
from movierec.store.events import EventStore

MINUTE_US = 60_000_000
ANSWER_TTL_US = 86_400_000_000  # an answer the site never logged is dropped after a day
GIVE_UP_US = 3_600_000_000  # a logged request with no answer record waits at most an hour


def new_files(store: EventStore, kind: str, after: int, upto: int) -> Batches:
    """The files with rows of batches after < seq <= upto, and that range."""
    return Batches(store.batch_files(f"events/{kind}", after, upto), after, upto)


@dataclass(frozen=True)
class Batches:
    files: list[tuple[str, bool]]  # (path, every row in range); merged files hold a range
    after: int
    upto: int


def _read(con: duckdb.DuckDBPyConnection, batches: Batches, select: str, empty: str) -> str:
    """A SELECT over the rows of the given batches, or over nothing with the same columns."""
    parts = []
    for whole in (True, False):
        files = [f for f, w in batches.files if w == whole]
        if files:
            listed = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            source = f"read_parquet([{listed}], union_by_name=true)"
            keep = "" if whole else f" WHERE seq > {batches.after} AND seq <= {batches.upto}"
            parts.append(f"SELECT {select} FROM {source}{keep}")
    return " UNION ALL ".join(parts) if parts else f"SELECT {empty} WHERE false"


def update(
    state: OnlineState,
    store: EventStore,
    answers_dir: Path,
    experiment: Callable[[str], Experiment | None],
    follow_us: int,
    lateness_us: int,
    limit_ms: int = 600,
) -> dict[str, int]:
    """Read what is new into `state`; the counts read (for progress and the report)."""
    meta = state.meta
    checkpoint = store.checkpoint()
    upto = checkpoint.seq if checkpoint else 0
    con = duckdb.connect()
    for name, table in state.tables.items():
        con.register(f"s_{name}", table)
    a_new, meta.offsets, bad = read_new(answers_dir, meta.offsets)
    con.register("a_new", a_new)
    unknown = store.unknown_movies()
    con.register("unknown", pa.table({"movie_id": pa.array(sorted(unknown), pa.string())}))
    rec = new_files(store, "recommendation", meta.seq, upto)
    con.sql(
        "CREATE TABLE r_new AS "
        + _read(
            con,
            rec,
            "epoch_us(time) AS t, user_id, status, latency_ms, result, "
            "array_to_string(items, ',') AS key",
            "0::BIGINT AS t, 0::INT AS user_id, 0::SMALLINT AS status, 0::INT AS latency_ms, "
            "''::VARCHAR AS result, ''::VARCHAR AS key",
        )
    )
    con.sql(
        f"CREATE TABLE r_ids AS SELECT *, {meta.next_id} - 1 + row_number() OVER "
        "(ORDER BY t, user_id, status, latency_ms, key) AS id FROM r_new"
    )
    n_rec = con.sql("SELECT count(*) FROM r_ids").fetchall()[0][0]
    meta.next_id += n_rec
    watch = new_files(store, "watch", meta.seq, upto)
    rate = new_files(store, "rate", meta.seq, upto)
    movie_filter = "WHERE movie_id NOT IN (SELECT movie_id FROM unknown)"
    con.sql(
        "CREATE TABLE w_new AS SELECT * FROM ("
        + _read(
            con,
            watch,
            "epoch_us(time) AS t, user_id, movie_id::VARCHAR AS movie_id, minute, -1 AS stars",
            "0::BIGINT AS t, 0::INT AS user_id, ''::VARCHAR AS movie_id, 0::INT AS minute, "
            "-1 AS stars",
        )
        + " UNION ALL "
        + _read(
            con,
            rate,
            "epoch_us(time) AS t, user_id, movie_id::VARCHAR AS movie_id, -1 AS minute, "
            "rating::INT AS stars",
            "0::BIGINT AS t, 0::INT AS user_id, ''::VARCHAR AS movie_id, 0::INT AS minute, "
            "0 AS stars",
        )
        + f") {movie_filter}"
    )
    latest = con.sql(
        "SELECT max(t) FROM (SELECT t FROM r_new UNION ALL SELECT t FROM w_new)"
    ).fetchall()[0][0]
    if latest is not None:
        meta.watermark = max(meta.watermark or latest, latest)
    _attribute(con, state, experiment, limit_ms)
    _follow(con, state, follow_us, lateness_us)
    meta.seq = max(meta.seq, upto)
    counters = meta.counters
    counters["bad_answer_records"] = counters.get("bad_answer_records", 0) + bad
    read = {
        "recommendation_lines": n_rec,
        "watch_and_rate_lines": con.sql("SELECT count(*) FROM w_new").fetchall()[0][0],
        "answer_records": a_new.num_rows,
    }
    for key, value in read.items():
        counters[f"{key}_read"] = counters.get(f"{key}_read", 0) + value
    con.close()
    return read


def _attribute(
    con: duckdb.DuckDBPyConnection,
    state: OnlineState,
    experiment: Callable[[str], Experiment | None],
    limit_ms: int,
) -> None:
    meta = state.meta
    con.sql(
        """CREATE TABLE site AS
        SELECT id, t, user_id, key, latency_ms FROM s_awaiting
        UNION ALL SELECT id, t, user_id, key, latency_ms FROM r_ids WHERE status = 200"""
    )
    con.sql(
        "CREATE TABLE ans AS SELECT *, row_number() OVER (ORDER BY served_us, user_id) AS aid FROM "
        "(SELECT * FROM s_pending_answers UNION ALL SELECT * FROM a_new)"
    )
    con.sql(
        """CREATE TABLE pairs AS
        WITH s AS (SELECT *, row_number() OVER (PARTITION BY user_id, key ORDER BY t, id) AS rn
                   FROM site),
             a AS (SELECT *, row_number() OVER (PARTITION BY user_id, key ORDER BY served_us) AS rn
                   FROM ans)
        SELECT s.id, s.t, s.user_id, s.key, s.latency_ms, a.aid, a.version, a.experiment, a.arm
        FROM s JOIN a USING (user_id, key, rn)"""
    )
    newest = con.sql("SELECT max(served_us) FROM ans").fetchall()[0][0] or 0
    unpaired = "aid NOT IN (SELECT aid FROM pairs)"
    columns = ", ".join(SCHEMAS["pending_answers"].names)
    kept = con.sql(
        f"SELECT {columns} FROM ans WHERE {unpaired} AND served_us >= {newest - ANSWER_TTL_US}"
    ).to_arrow_table()
    dropped = con.sql(
        f"SELECT count(*) FROM ans WHERE {unpaired} AND served_us < {newest - ANSWER_TTL_US}"
    ).fetchall()[0][0]
    meta.counters["answers_never_logged"] = meta.counters.get("answers_never_logged", 0) + dropped
    state.tables["pending_answers"] = kept
    # A logged request still without its record waits, unless a later request of the same
    # user was paired (its record would have come first) or it is an hour behind the log.
    watermark = meta.watermark or 0
    con.sql(
        """CREATE TABLE unpaired AS
        SELECT s.* FROM site s WHERE s.id NOT IN (SELECT id FROM pairs)""",
    )
    con.sql(
        f"""CREATE TABLE given_up AS SELECT u.* FROM unpaired u
        WHERE u.t < {watermark - GIVE_UP_US}
           OR EXISTS (SELECT 1 FROM pairs p WHERE p.user_id = u.user_id AND p.t > u.t)"""
    )
    state.tables["awaiting"] = con.sql(
        "SELECT id, t, user_id, key, latency_ms FROM unpaired "
        "WHERE id NOT IN (SELECT id FROM given_up)"
    ).to_arrow_table()
    # Requests attributed by context: failures, and answers whose record never came. The
    # context is every paired request of the last two hours of the log (a request waits
    # at most one for its record) and the latest before them.
    con.sql(
        "CREATE TABLE ctx AS SELECT t, version, experiment FROM pairs UNION ALL "
        "SELECT * FROM s_context"
    )
    con.sql(
        """CREATE TABLE by_context AS
        WITH x AS (
            SELECT id, t, user_id, key, 200::SMALLINT AS status, latency_ms, '' AS result
            FROM given_up
            UNION ALL
            SELECT id, t, user_id, key, status, latency_ms, result FROM r_ids WHERE status <> 200
        )
        SELECT x.*, c.version, c.experiment FROM x ASOF LEFT JOIN ctx c ON x.t >= c.t"""
    )
    ctx = con.sql("SELECT * FROM by_context").to_arrow_table()
    arms = _arms_by_hash(ctx, experiment)
    con.register("ctx_arms", arms)
    con.sql(
        """CREATE TABLE attributed AS
        SELECT p.id, p.t, p.user_id, p.key, 200::SMALLINT AS status, p.latency_ms, '' AS result,
               p.version, p.experiment, p.arm
        FROM pairs p
        UNION ALL SELECT * FROM ctx_arms"""
    )
    cutoff = watermark - 2 * GIVE_UP_US
    state.tables["context"] = con.sql(
        f"""SELECT t, version, experiment FROM ctx WHERE t >= {cutoff}
        UNION ALL
        (SELECT t, version, experiment FROM ctx WHERE t < {cutoff} ORDER BY t DESC LIMIT 1)"""
    ).to_arrow_table()
    hour = "(t // 3600000000) * 3600000000 AS hour"
    group = "hour, version, experiment, arm"
    new_requests = con.sql(
        f"""SELECT {group}, count(*) AS requests,
                   count(*) FILTER (WHERE status = 200) AS answered,
                   count(*) FILTER (WHERE status = 200 AND latency_ms <= {limit_ms}) AS ok,
                   count(*) FILTER (WHERE status <> 200
                                    AND result NOT LIKE '%TimeoutException%') AS errors,
                   count(*) FILTER (WHERE result LIKE '%TimeoutException%') AS timeouts
            FROM (SELECT *, {hour} FROM attributed) GROUP BY ALL"""
    ).to_arrow_table()
    state.tables["requests"] = _add(state.tables["requests"], new_requests, "requests")
    new_latency = con.sql(
        f"SELECT {group}, latency_ms, count(*) AS n FROM (SELECT *, {hour} FROM attributed) "
        "GROUP BY ALL"
    ).to_arrow_table()
    state.tables["latency"] = _add(state.tables["latency"], new_latency, "latency")
    con.sql(
        f"""CREATE TABLE opened AS SELECT id, t, user_id, key, {hour}, version, experiment, arm
        FROM attributed WHERE status = 200
        UNION ALL SELECT * FROM s_open"""
    )


def _follow(
    con: duckdb.DuckDBPyConnection, state: OnlineState, follow_us: int, lateness_us: int
) -> None:
    # Requests still waiting for their answer record collect their watches meanwhile.
    con.register("s_awaiting_now", state.tables["awaiting"])
    con.sql(
        f"""CREATE TABLE matched AS
        SELECT * FROM s_matched
        UNION ALL
        SELECT o.id, w.movie_id, w.t, w.minute, w.stars
        FROM (SELECT id, t, user_id, key FROM opened
              UNION ALL SELECT id, t, user_id, key FROM s_awaiting_now) o
        JOIN w_new w ON w.user_id = o.user_id
        WHERE w.t > o.t AND w.t <= o.t + {follow_us}
          AND list_contains(string_split(o.key, ','), w.movie_id)"""
    )
    watermark = state.meta.watermark or 0
    closing = f"t + {follow_us + lateness_us} <= {watermark}"
    con.sql(f"CREATE TABLE closing AS SELECT * FROM opened WHERE {closing}")
    state.tables["open"] = con.sql(f"SELECT * FROM opened WHERE NOT ({closing})").to_arrow_table()
    state.tables["matched"] = con.sql(
        "SELECT * FROM matched WHERE id NOT IN (SELECT id FROM closing)"
    ).to_arrow_table()
    closed = outcomes(con, "closing", "matched", state.meta.settings["window_us"])
    state.tables["followups"] = _add(state.tables["followups"], closed, "followups")


def outcomes(
    con: duckdb.DuckDBPyConnection,
    requests: str,
    matched: str,
    window_us: int,
    keys: tuple[str, ...] = ("hour", "version", "experiment", "arm"),
) -> pa.Table:
    """Hourly sums of what followed the given answered requests: conversion within the
    window, rank of the movie chosen (the first listed movie watched), its minutes watched
    and stars given within the follow window. `keys` are the requests' columns the sums
    are grouped by (the audit groups by request, to give each user group its share)."""
    selected = ", ".join(keys)
    return con.sql(
        f"""WITH first AS (
            SELECT m.id, arg_min(m.movie_id, m.t) AS movie
            FROM {matched} m JOIN {requests} r ON m.id = r.id
            WHERE m.stars < 0 AND m.t <= r.t + {window_us}
            GROUP BY m.id
        ), chosen AS (
            SELECT m.id, count(DISTINCT m.minute) FILTER (WHERE m.stars < 0) AS minutes,
                   max(m.stars) FILTER (WHERE m.stars > 0) AS stars
            FROM {matched} m JOIN first f ON m.id = f.id AND m.movie_id = f.movie
            GROUP BY m.id
        ), per AS (
            SELECT {", ".join(f"r.{key}" for key in keys)}, f.movie,
                   list_position(string_split(r.key, ','), f.movie) AS rank,
                   coalesce(c.minutes, 0) AS minutes, c.stars
            FROM {requests} r LEFT JOIN first f ON f.id = r.id LEFT JOIN chosen c ON c.id = r.id
        )
        SELECT {selected}, count(*) AS closed,
               count(movie) AS followed, coalesce(sum(rank), 0) AS rank_sum,
               coalesce(sum(minutes), 0) AS minutes_sum,
               coalesce(sum(minutes * minutes), 0) AS minutes_sq,
               count(stars) AS rated, coalesce(sum(stars), 0) AS stars_sum
        FROM per GROUP BY ALL"""
    ).to_arrow_table()


def _arms_by_hash(table: pa.Table, experiment: Callable[[str], Experiment | None]) -> pa.Table:
    """Version and arm of requests attributed by context: within an experiment, the arm
    the user's hash falls in, and that arm's version."""
    versions = table.column("version").to_pylist()
    experiments = table.column("experiment").to_pylist()
    arms: list[str | None] = [None] * len(versions)
    users = table.column("user_id").to_numpy(zero_copy_only=False)
    for exp_id in {e for e in experiments if e}:
        spec = experiment(exp_id)
        if spec is None:
            continue  # an experiment the registry no longer knows: version only
        rows = np.flatnonzero(np.array([e == exp_id for e in experiments]))
        index = spec.arm_index(users[rows])
        for row, i in zip(rows.tolist(), index.tolist(), strict=True):
            arms[row] = spec.arms[i].name
            versions[row] = spec.arms[i].version
    return pa.table(
        {
            "id": table.column("id"),
            "t": table.column("t"),
            "user_id": table.column("user_id"),
            "key": table.column("key"),
            "status": table.column("status"),
            "latency_ms": table.column("latency_ms"),
            "result": table.column("result"),
            "version": pa.array(versions, pa.string()),
            "experiment": table.column("experiment"),
            "arm": pa.array(arms, pa.string()),
        }
    )


def _add(old: pa.Table, new: pa.Table, name: str) -> pa.Table:
    """Sum two tables of hourly sums over their group columns."""
    schema = SCHEMAS[name]
    sums = [
        f for f in schema.names if f not in ("hour", "version", "experiment", "arm", "latency_ms")
    ]
    keys = [f for f in schema.names if f not in sums]
    con = duckdb.connect()
    con.register("old", old)
    con.register("new", new.select(schema.names) if new.num_rows else schema.empty_table())
    summed = ", ".join(f"sum({s})::BIGINT AS {s}" for s in sums)
    table = con.sql(
        f"SELECT {', '.join(keys)}, {summed} FROM (SELECT * FROM old UNION ALL BY NAME "
        f"SELECT * FROM new) GROUP BY ALL ORDER BY ALL"
    ).to_arrow_table()
    con.close()
    return table.cast(schema)


def _sql_text(value: str | None) -> str:
    return "NULL::VARCHAR" if value is None else "'" + value.replace("'", "''") + "'"
