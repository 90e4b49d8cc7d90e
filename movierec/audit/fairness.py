"""Fairness per user group (movierec/audit/groups.py): does every group get about as good
recommendations as everyone, offline (the model) and online (the system)?

Two requirements, each a figure, a floor and a least group size:

    model   NDCG@20 and recall@20 of each group on the held-out split, against all test
            users: at least MODEL_FLOOR x theirs
    system  conversion@30m of each group's answered requests (docs/monitoring.md defines
            it), against all answered requests: at least SYSTEM_FLOOR x theirs

A group's figure is a ratio of sums over its users (NDCG: the sum of per-user NDCG over
the number of users; conversion: followed answers over judged answers), with a 95%
interval from the spread between users (the linearised variance of a ratio estimator, so
a user's many answers count as one user's evidence, not as independent draws). A group
breaches when it has at least MIN_GROUP_USERS users, its figure is below floor x the
overall one, and the gap is no accident of who was sampled: even the upper end of its
interval is below the overall figure. Without that second test a catalogue of 21
occupations would always show a few groups of 30-odd users below 0.8x by chance alone;
with it, a real gap of a large group (new users' cold start) still breaches. Smaller
groups are shown, marked not eligible, and never breach.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from movierec.audit.gaps import judge_groups, rounded, summarise, verdict
from movierec.audit.groups import (
    GROUPINGS,
    LABELS,
    NEW_USER_DAYS,
    catalogue_warnings,
    first_seen,
    user_groups,
)
from movierec.catalog.reader import Catalogue
from movierec.evaluation.metrics import per_user_metrics
from movierec.evaluation.offline import recommend_for
from movierec.evaluation.plan import plan
from movierec.evaluation.split import SplitConfig
from movierec.features.feedback import FeedbackConfig
from movierec.models.base import LIST_LENGTH
from movierec.models.kinds import fit
from movierec.online.update import MINUTE_US, outcomes
from movierec.registry.versions import Registry
from movierec.store.events import EventStore
from movierec.times import iso

# The four-fifths rule: a group's outcome below 80% of the best-treated's is the usual
# mark of adverse impact (US EEOC guidelines, and the default disparity threshold of
# fairness toolkits such as Aequitas). Measured against all users rather than the best
# group, it is a little stricter for small groups and never fires on noise between two
# large groups that are both fine.
MODEL_FLOOR = 0.8
SYSTEM_FLOOR = 0.8
# Below about 30 users a group's mean rests on too few people to judge (the usual point
# where the normal approximation of a mean becomes fair); such groups are shown, not judged.
MIN_GROUP_USERS = 30
OFFLINE_FIGURES = ("ndcg@20", "recall@20")


def offline_figures(
    per_user: Mapping[str, np.ndarray],
    groups: Mapping[str, np.ndarray],
    floor: float = MODEL_FLOOR,
    min_users: int = MIN_GROUP_USERS,
    figures: tuple[str, ...] = OFFLINE_FIGURES,
) -> dict[str, Any]:
    """Each group's per-user means of `figures` (NaN: a user without held-out relevance,
    left out as in `evaluation.metrics`) against all users'."""
    overall: dict[str, Any] = {}
    groupings: dict[str, dict[str, dict[str, Any]]] = {g: {} for g in groups}
    for figure in figures:
        values = np.asarray(per_user[figure], dtype=np.float64)
        defined = ~np.isnan(values)
        mean = float(values[defined].mean()) if defined.any() else None
        overall[figure] = rounded(mean)
        overall["users"] = int(defined.sum())
        for grouping, given in groups.items():
            labels = np.asarray(given, dtype=object)
            order = LABELS.get(grouping) or tuple(sorted(set(labels.tolist())))
            ones = np.ones(int(defined.sum()))
            judged = judge_groups(
                figure, labels[defined], values[defined], ones, mean, order, floor, min_users
            )
            members = dict(zip(*np.unique(labels.astype(str), return_counts=True), strict=True))
            for label, cell in judged.items():
                del cell["num"], cell["den"]
                row = groupings[grouping].setdefault(
                    label, {"users": cell["users"], "members": int(members.get(label, 0))}
                )
                row.setdefault("figures", {})[figure] = cell
                row["eligible"] = cell["eligible"]
    breaches, worst = summarise(groupings, figures)
    return {"overall": overall, "groupings": groupings, **verdict(breaches, worst)}


def offline_fairness(
    store: str | Path,
    models: str | Path,
    version: str | None = None,
    *,
    split: SplitConfig | None = None,
    train_share: float = 0.8,
    seed: int = 0,
    floor: float = MODEL_FLOOR,
    min_users: int = MIN_GROUP_USERS,
    new_user_days: float = NEW_USER_DAYS,
) -> dict[str, Any]:
    """The model requirement for one registered version (production by default): its kind
    and hyperparameters refitted on the test fold's training data, as `movierec evaluate`
    does (the artifact learned from everything and would be judged on what it saw), then
    NDCG@20 and recall@20 per group of the test users."""
    started = time.monotonic()
    event_store, registry = EventStore(store), Registry(models)
    version = version or registry.production()
    if version is None:
        raise ValueError(f"no production version in {models}: name one, or release one first")
    if not (registry.versions_dir / version / "provenance.json").exists():
        raise ValueError(f"no version {version} in {models}")
    provenance = registry.provenance(version)
    feedback = FeedbackConfig(**provenance.get("data", {}).get("feedback", {}))
    folds = plan(event_store, feedback, split or SplitConfig(), train_share)
    train, test = folds.test.train, folds.test.test
    if test.n_users == 0:
        raise ValueError(f"no test users to judge fairness on ({folds.kind} split: {folds.why})")
    catalogue = Catalogue.load(event_store.catalog_path)
    model = fit(provenance["model"], dict(provenance["hyperparameters"]), train, seed)
    lists = recommend_for(model, train, test.user_ids, catalogue, LIST_LENGTH)
    per_user = per_user_metrics(lists, test.relevant, LIST_LENGTH)
    # New relative to the test cut; a per-user split has no cut, so to the data's end.
    at = folds.cuts.get("test_cut", folds.last_ns)
    seen = first_seen(event_store, test.user_ids)
    groups = user_groups(catalogue, test.user_ids, seen, at, new_user_days)
    report = offline_figures(per_user, groups, floor, min_users)
    return {
        "requirement": _requirement("model", OFFLINE_FIGURES, floor, min_users),
        "version": version,
        "model": provenance["model"],
        "split": {"kind": folds.kind, "judged_at": iso(at), "test_users": test.n_users},
        "new_user_days": new_user_days,
        **report,
        "warnings": catalogue_warnings(catalogue, test.user_ids),
        "seconds": round(time.monotonic() - started, 3),
    }


def online_figures(
    user_ids: np.ndarray,
    followed: np.ndarray,
    groups: Mapping[str, np.ndarray],
    figure: str,
    floor: float = SYSTEM_FLOOR,
    min_users: int = MIN_GROUP_USERS,
) -> dict[str, Any]:
    """Conversion per group from judged answers (a user id, followed or not, and a label
    per grouping for each): a group's users are the units of its interval."""
    users = np.asarray(user_ids, dtype=np.int64)
    hits = np.asarray(followed, dtype=np.float64)
    value = float(hits.mean()) if len(hits) else None
    overall = {"users": len(np.unique(users)), "answers": len(hits)}
    overall |= {"conversions": int(hits.sum()), figure: rounded(value)}
    groupings: dict[str, dict[str, dict[str, Any]]] = {}
    for grouping, labels in groups.items():
        names, code = np.unique(np.asarray(labels, dtype=object).astype(str), return_inverse=True)
        # One unit per (user, label): a user's tenure changes once, from new to returning.
        units, index = np.unique(users * max(len(names), 1) + code, return_inverse=True)
        num = np.bincount(index, weights=hits, minlength=len(units))
        den = np.bincount(index, minlength=len(units)).astype(np.float64)
        order = LABELS.get(grouping) or tuple(names.tolist())
        unit_labels = names.astype(object)[units % max(len(names), 1)]
        judged = judge_groups(figure, unit_labels, num, den, value, order, floor, min_users)
        groupings[grouping] = {}
        for label, cell in judged.items():
            answers, conversions = int(cell.pop("den")), int(cell.pop("num"))
            groupings[grouping][label] = {
                "users": cell["users"],
                "answers": answers,
                "conversions": conversions,
                "eligible": cell["eligible"],
                "figures": {figure: cell},
            }
    breaches, worst = summarise(groupings, (figure,))
    return {"overall": overall, "groupings": groupings, **verdict(breaches, worst)}


_REQUESTS_SQL = """
CREATE TABLE requests AS
SELECT * FROM (
    SELECT row_number() OVER (ORDER BY time, user_id, latency_ms, items) AS id,
           epoch_us(time) AS t, user_id, array_to_string(items, ',') AS key
    FROM recommendation WHERE status = 200
) WHERE t >= $since AND t < $until AND ($final OR t + $wait <= $watermark)
"""
_MATCHED_SQL = """
CREATE TABLE matched AS
SELECT r.id, CAST(w.movie_id AS VARCHAR) AS movie_id, epoch_us(w.time) AS t, w.minute,
       -1 AS stars
FROM requests r JOIN watch w ON w.user_id = r.user_id
WHERE epoch_us(w.time) > r.t AND epoch_us(w.time) <= r.t + $window
  AND list_contains(string_split(r.key, ','), CAST(w.movie_id AS VARCHAR))
"""
_NEWEST_SQL = """
SELECT max(t) FROM (SELECT epoch_us(max(time)) AS t FROM recommendation
    UNION ALL SELECT epoch_us(max(time)) FROM watch UNION ALL SELECT epoch_us(max(time)) FROM rate)
"""


def judged_answers(
    con: Any,
    window_us: int,
    lateness_us: int,
    final: bool,
    since_us: int | None = None,
    until_us: int | None = None,
) -> dict[str, np.ndarray]:
    """The site's status-200 requests whose conversion window closed (t, user_id, and
    whether a watch of a listed movie followed within the window), on a connection with
    the store's views. The outcome is `online.update.outcomes`, the online figures' own."""
    newest = con.sql(_NEWEST_SQL).fetchall()[0][0] or 0
    window = {"since": since_us or 0, "until": until_us or 2**62, "final": final}
    window |= {"wait": window_us + lateness_us, "watermark": newest}
    con.execute(_REQUESTS_SQL, window)
    con.execute(_MATCHED_SQL, {"window": window_us})
    outcome = outcomes(con, "requests", "matched", window_us, keys=("id",))
    con.register("outcome", outcome)
    rows = con.sql(
        "SELECT r.t, r.user_id, o.followed FROM requests r JOIN outcome o USING (id) ORDER BY id"
    ).fetchnumpy()
    return {"t_us": rows["t"], "user_id": rows["user_id"], "followed": rows["followed"] > 0}


def online_fairness(
    store: str | Path,
    *,
    window_minutes: int = 30,
    lateness_minutes: int = 10,
    final: bool = False,
    since_ns: int | None = None,
    until_ns: int | None = None,
    floor: float = SYSTEM_FLOOR,
    min_users: int = MIN_GROUP_USERS,
    new_user_days: float = NEW_USER_DAYS,
) -> dict[str, Any]:
    """The system requirement: conversion of each group's answered requests in [since,
    until) (every version and fallback together: what the site's users got), with a
    request's tenure judged at its own time. Windows still open `lateness_minutes` after
    the log's newest event are left out, unless `final` (a log that has ended)."""
    started = time.monotonic()
    event_store = EventStore(store)
    if event_store.checkpoint() is None:
        raise ValueError(f"no committed events in {store}: run `movierec ingest` first")
    since = None if since_ns is None else since_ns // 1000
    until = None if until_ns is None else until_ns // 1000
    window_us, lateness_us = window_minutes * MINUTE_US, lateness_minutes * MINUTE_US
    with contextlib.closing(event_store.connect()) as con:
        answers = judged_answers(con, window_us, lateness_us, final, since, until)
    users = answers["user_id"].astype(np.int64)
    catalogue = Catalogue.load(event_store.catalog_path)
    seen = first_seen(event_store, users)
    groups = user_groups(catalogue, users, seen, answers["t_us"] * 1000, new_user_days)
    figure = f"conversion@{window_minutes}m"
    report = online_figures(users, answers["followed"], groups, figure, floor, min_users)
    warnings = catalogue_warnings(catalogue, np.unique(users))
    if len(users) == 0:
        warnings.append("no answered request with a closed conversion window: nothing judged")
    return {
        "requirement": _requirement("system", (figure,), floor, min_users),
        "window": {"minutes": window_minutes, "lateness_minutes": lateness_minutes},
        "final": final,
        "new_user_days": new_user_days,
        **report,
        "warnings": warnings,
        "seconds": round(time.monotonic() - started, 3),
    }


def _requirement(
    kind: str, figures: tuple[str, ...], floor: float, min_users: int
) -> dict[str, Any]:
    subject = "held-out test users" if kind == "model" else "answered requests"
    return {
        "kind": kind,
        "figures": list(figures),
        "floor": floor,
        "min_users": min_users,
        "confidence": 0.95,
        "groupings": list(GROUPINGS),
        "statement": (
            f"{' and '.join(figures)} of every user group with at least {min_users} users "
            f"is at least {floor:g}x that of all {subject}; a group breaches when it is "
            "below that and the upper end of its 95% interval is below all users' figure"
        ),
    }
