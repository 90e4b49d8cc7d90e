"""The online figures, from the log alone: per model version, per experiment arm, per hour,
and overall (docs/monitoring.md defines each one).

`online_report` reads what is new since its last run (movierec/online/update.py), keeps
its state (movierec/online/state.py) and writes the figures from the state's sums, so a
rerun over a grown store costs what the new lines cost."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from movierec.online.state import OnlineState
from movierec.online.update import MINUTE_US, outcomes, update
from movierec.registry.experiments import Experiment, Experiments, answer_log_dir
from movierec.store.events import EventStore

_KEYS = ("version", "experiment", "arm")


def online_report(
    store: Path,
    models: Path,
    state: Path | None = None,
    window_minutes: int = 30,
    follow_minutes: int = 240,
    lateness_minutes: int = 10,
    limit_ms: int = 600,
    final: bool = False,
    answers: Path | None = None,
) -> dict[str, Any]:
    started = time.monotonic()
    event_store = EventStore(store)
    if event_store.checkpoint() is None:
        raise ValueError(f"no committed events in {store}: run `movierec ingest` first")
    answers_dir = answers or answer_log_dir(models)
    online = OnlineState(state)
    settings = {
        "window_us": window_minutes * MINUTE_US,
        "follow_us": follow_minutes * MINUTE_US,
        "lateness_us": lateness_minutes * MINUTE_US,
        "limit_ms": limit_ms,
    }
    online.check_settings(settings)
    experiments = Experiments(models)
    known: dict[str, Experiment | None] = {}

    def experiment(exp_id: str) -> Experiment | None:
        if exp_id not in known:
            try:
                known[exp_id] = experiments.get(exp_id)
            except ValueError:
                known[exp_id] = None
        return known[exp_id]

    read = update(
        online,
        event_store,
        answers_dir,
        experiment,
        settings["follow_us"],
        settings["lateness_us"],
        limit_ms,
    )
    report = _report(online, final)
    report["read"] = read
    report["counters"] = dict(online.meta.counters)
    report["answer_log"] = str(answers_dir)
    if not answers_dir.is_dir():
        report["warnings"].append(
            f"no answer log in {answers_dir}: no request could be attributed to a version"
        )
    online.save()
    report["seconds"] = round(time.monotonic() - started, 3)
    return report


def _report(online: OnlineState, final: bool) -> dict[str, Any]:
    meta = online.meta
    settings = meta.settings
    con = duckdb.connect()
    for name, table in online.tables.items():
        con.register(f"s_{name}", table)
    watermark = meta.watermark or 0
    window_done = f"t + {settings['window_us'] + settings['lateness_us']} <= {watermark}"
    where = "" if final else f"WHERE {window_done}"
    con.sql(f"CREATE TABLE judged_open AS SELECT * FROM s_open {where}")
    early = outcomes(con, "judged_open", "s_matched", settings["window_us"])
    con.register("early", early)
    # Conversion and rank are known once the conversion window closed; minutes and stars
    # once the follow window did (or, for a finished log, with what it holds).
    con.sql(
        f"""CREATE TABLE outcome AS
        SELECT hour, version, experiment, arm, closed AS judged, followed, rank_sum,
               closed AS settled, minutes_sum, minutes_sq, rated, stars_sum
        FROM s_followups
        UNION ALL
        SELECT hour, version, experiment, arm, closed AS judged, followed, rank_sum,
               {"closed" if final else "0"} AS settled,
               {"minutes_sum" if final else "0"}, {"minutes_sq" if final else "0"},
               {"rated" if final else "0"}, {"stars_sum" if final else "0"}
        FROM early"""
    )
    pending = con.sql("SELECT count(*) FROM s_open").fetchall()[0][0] - int(
        sum(early.column("closed").to_pylist())
    )
    report: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "definitions": "docs/monitoring.md",
        "window_minutes": settings["window_us"] // MINUTE_US,
        "follow_minutes": settings["follow_us"] // MINUTE_US,
        "limit_ms": settings["limit_ms"],
        "final": final,
        "log_until": _iso(meta.watermark),
        "pending": {
            "answers_in_window": pending,
            "requests_awaiting_answer_record": online.tables["awaiting"].num_rows,
            "answer_records_awaiting_log_line": online.tables["pending_answers"].num_rows,
        },
        "warnings": [],
    }
    name = f"conversion@{settings['window_us'] // MINUTE_US}m"
    empty = _figures(con, [], name).get((), None)
    report["overall"] = empty or _blank(name)
    report["versions"] = {
        k[0] or "unattributed": v for k, v in _figures(con, ["version"], name).items()
    }
    arms = _figures(con, ["experiment", "arm", "version"], name)
    report["arms"] = {
        f"{k[0]}/{k[1]}": {"experiment": k[0], "arm": k[1], "version": k[2], **v}
        for k, v in arms.items()
        if k[0] is not None and k[1] is not None
    }
    hours = _figures(con, ["hour", *_KEYS], name)
    report["hours"] = [
        {"hour": _iso(k[0]), "version": k[1], "experiment": k[2], "arm": k[3], **v}
        for k, v in sorted(hours.items(), key=lambda item: (item[0][0], *map(str, item[0][1:])))
    ]
    waiting = online.tables["awaiting"].num_rows
    if final and waiting:
        # Their record may be in an answer log not read (another replica's, a lost one);
        # attributing them needs the next run's context, so --final names them instead.
        report["warnings"].append(
            f"{waiting} answered requests of the log's last hour have no answer record and "
            "are not counted (pending.requests_awaiting_answer_record)"
        )
    elif report["overall"]["requests"] == 0 and waiting:
        report["warnings"].append(
            f"no request counted yet: {waiting} wait for their answer record, or for the log "
            "to run an hour past them (--final counts them now)"
        )
    elif report["overall"]["requests"] == 0:
        report["warnings"].append("no recommendation requests in the log yet")
    con.close()
    return report


def _figures(
    con: duckdb.DuckDBPyConnection, keys: list[str], conversion: str
) -> dict[tuple, dict[str, Any]]:
    cols = ", ".join(["0 AS all_", *keys])
    part = ", ".join(["all_", *keys])
    requests = con.sql(
        f"""SELECT {part}, sum(requests) r, sum(answered) a, sum(ok) ok, sum(errors) e,
                   sum(timeouts) tmo
            FROM (SELECT {cols}, * FROM s_requests) GROUP BY ALL"""
    ).fetchall()
    latency = con.sql(
        f"""WITH g AS (SELECT {part}, latency_ms, sum(n) AS n
                       FROM (SELECT {cols}, * FROM s_latency) GROUP BY ALL),
                 c AS (SELECT *, sum(n) OVER (PARTITION BY {part} ORDER BY latency_ms) AS cum,
                              sum(n) OVER (PARTITION BY {part}) AS total FROM g)
            SELECT {part}, min(latency_ms) FILTER (WHERE cum >= 0.5 * total),
                   min(latency_ms) FILTER (WHERE cum >= 0.99 * total)
            FROM c GROUP BY ALL"""
    ).fetchall()
    follow = con.sql(
        f"""SELECT {part}, sum(judged), sum(followed), sum(rank_sum), sum(settled),
                   sum(minutes_sum), sum(minutes_sq), sum(rated), sum(stars_sum)
            FROM (SELECT {cols}, * FROM outcome) GROUP BY ALL"""
    ).fetchall()
    width = len(keys) + 1
    lat = {tuple(row[1:width]): row[width:] for row in latency}
    fol = {tuple(row[1:width]): row[width:] for row in follow}
    out: dict[tuple, dict[str, Any]] = {}
    for row in requests:
        key = tuple(row[1:width])
        r, a, ok, e, tmo = (int(x or 0) for x in row[width:])
        p50, p99 = lat.get(key, (None, None))
        judged, followed, rank_sum, settled, m_sum, m_sq, rated, stars = (
            int(x or 0) for x in fol.get(key, (0,) * 8)
        )
        out[key] = {
            "requests": r,
            "answered": a,
            "availability": _share(ok, r),
            "error_rate": _share(e, r),
            "timeout_rate": _share(tmo, r),
            "latency_p50_ms": p50,
            "latency_p99_ms": p99,
            "judged": judged,
            "followed": followed,
            conversion: _share(followed, judged),
            "chosen_rank": round(rank_sum / followed, 4) if followed else None,
            "settled": settled,
            "minutes_watched": round(m_sum / settled, 4) if settled else None,
            "minutes_sum": m_sum,
            "minutes_sq": m_sq,
            "rated": rated,
            "mean_stars": round(stars / rated, 4) if rated else None,
        }
    return out


def _blank(conversion: str) -> dict[str, Any]:
    """The figures of a log without requests: zero counts, no shares."""
    zero = ("requests", "answered", "judged", "followed", "settled", "minutes_sum", "minutes_sq")
    shares = ("availability", "error_rate", "timeout_rate", "latency_p50_ms", "latency_p99_ms")
    rest = ("chosen_rank", "minutes_watched", "mean_stars")
    return {
        **dict.fromkeys(zero, 0),
        **dict.fromkeys(shares, None),
        conversion: None,
        **dict.fromkeys(rest, None),
        "rated": 0,
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _iso(micros: int | None) -> str | None:
    if micros is None:
        return None
    return datetime.fromtimestamp(micros / 1e6, UTC).isoformat(timespec="seconds")
