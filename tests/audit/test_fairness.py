"""Fairness per user group: known answers on hand-made figures and logs, the vectorised
figures against the slow reference, and the real thing on the simulated site."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.audit import reference
from movierec.audit.fairness import (
    judged_answers,
    offline_fairness,
    offline_figures,
    online_fairness,
    online_figures,
)
from movierec.catalog.cache import OK, CacheEntry, CatalogCache
from movierec.catalog.records import UserRecord
from movierec.registry.versions import Registry
from movierec.times import DAY_NS
from tests.support.online import SEC, OnlineWorld, Request
from tests.support.simulated import SimulatedStore
from tests.support.simulated_run import SiteRun
from tests.support.store import T0

NDCG, RECALL = "ndcg@20", "recall@20"
MINUTE_US = 60_000_000


def test_a_group_that_gets_nothing_right_has_ratio_zero_and_breaches() -> None:
    # 40 women get nothing right, 40 men everything; 3 more men have no held-out relevance.
    values = np.array([0.0] * 40 + [1.0] * 40 + [math.nan] * 3)
    gender = np.array(["F"] * 40 + ["M"] * 43, dtype=object)
    report = offline_figures({NDCG: values, RECALL: values}, {"gender": gender})
    women, men = report["groupings"]["gender"]["F"], report["groupings"]["gender"]["M"]
    assert report["overall"] == {NDCG: 0.5, RECALL: 0.5, "users": 80}
    assert women["figures"][NDCG][NDCG] == 0.0 and women["figures"][NDCG]["ratio"] == 0.0
    assert women["figures"][NDCG]["breach"] and women["figures"][RECALL]["breach"]
    assert (men["users"], men["members"], men["figures"][NDCG]["ratio"]) == (40, 43, 2.0)
    assert not men["figures"][NDCG]["breach"]
    assert report["groupings"]["gender"]["unknown"]["users"] == 0  # shown, though empty
    assert [(b["group"], b["figure"]) for b in report["breaches"]] == [("F", NDCG), ("F", RECALL)]
    assert report["worst_ratio"] == 0.0 and not report["passed"]
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_a_group_too_small_to_judge_is_shown_and_never_breaches() -> None:
    values = np.array([0.0] * 29 + [0.5] * 100)
    occupation = np.array(["farmer"] * 29 + ["writer"] * 100, dtype=object)
    report = offline_figures({NDCG: values, RECALL: values}, {"occupation": occupation})
    farmers = report["groupings"]["occupation"]["farmer"]
    assert farmers["users"] == 29 and farmers["figures"][NDCG]["ratio"] == 0.0
    assert not farmers["eligible"] and not farmers["figures"][NDCG]["breach"]
    assert report["breaches"] == [] and report["passed"]
    assert report["worst"]["group"] == "writer"  # the worst among the groups judged


def test_a_gap_that_could_be_chance_does_not_breach_but_a_certain_one_does() -> None:
    # 30 users alternating 0 and 0.76 (mean 0.38, 0.76x of 0.5) could be chance: their
    # interval reaches past the overall figure. 300 such users could not.
    for size, breach in ((30, False), (300, True)):
        group = [0.0, 0.76] * (size // 2)
        rest = [0.5] * (20 * size)
        values = np.array(group + rest)
        overall = values.mean()
        labels = np.array(["a"] * size + ["b"] * len(rest), dtype=object)
        report = offline_figures({NDCG: values, RECALL: values}, {"g": labels})
        cell = report["groupings"]["g"]["a"]["figures"][NDCG]
        assert cell["ratio"] == pytest.approx(0.38 / overall, abs=1e-6) and cell["ratio"] < 0.8
        assert cell["breach"] is breach, cell


labels_st = st.sampled_from(["a", "b", "c"])
metric_st = st.one_of(st.floats(0, 1), st.just(math.nan))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(metric_st, metric_st, labels_st, labels_st), min_size=1, max_size=60),
    st.integers(1, 6),
    st.floats(0.3, 1.2),
)
def test_offline_group_figures_agree_with_the_reference(
    users: list[tuple[float, float, str, str]], min_users: int, floor: float
) -> None:
    # NaN together, as the metrics give it: a user has held-out relevance or not.
    users = [(n, math.nan if math.isnan(n) else r, g1, g2) for n, r, g1, g2 in users]
    per_user = {NDCG: np.array([u[0] for u in users]), RECALL: np.array([u[1] for u in users])}
    groups = {
        "one": np.array([u[2] for u in users], dtype=object),
        "two": np.array([u[3] for u in users], dtype=object),
    }
    fast = offline_figures(per_user, groups, floor, min_users)
    slow = reference.offline_groups(
        [{NDCG: u[0], RECALL: u[1]} for u in users],
        [{"one": u[2], "two": u[3]} for u in users],
        (NDCG, RECALL),
        floor,
        min_users,
    )
    for grouping, by_label in slow.items():
        for label, figures in by_label.items():
            for figure, want in figures.items():
                got = fast["groupings"][grouping][label]["figures"][figure]
                assert_cell(got, want, figure)


def assert_cell(got: dict, want: dict, figure: str) -> None:
    assert got["users"] == want["users"]
    for mine, theirs in ((figure, "value"), ("upper", "upper"), ("ratio", "ratio")):
        if want[theirs] is None:
            assert got[mine] is None
        else:
            assert got[mine] == pytest.approx(want[theirs], abs=2e-6)
    if want["ratio_upper"] is not None and abs(want["ratio_upper"] - 1.0) > 1e-5:
        assert got["breach"] == want["breach"]  # (a tie within rounding may go either way)
    assert got["eligible"] == want["eligible"]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(1, 8), st.booleans(), labels_st), min_size=1, max_size=80),
    st.integers(1, 4),
)
def test_online_group_figures_agree_with_the_reference(
    answers: list[tuple[int, bool, str]], min_users: int
) -> None:
    users = np.array([a[0] for a in answers])
    followed = np.array([a[1] for a in answers])
    # A user's label may change between answers (tenure does), so it is drawn per answer.
    labels = {"g": np.array([a[2] for a in answers], dtype=object)}
    fast = online_figures(users, followed, labels, "conversion@30m", 0.8, min_users)
    slow = reference.online_groups([(u, f, {"g": g}) for u, f, g in answers], 0.8, min_users)
    assert fast["overall"]["answers"] == len(answers)
    assert fast["overall"]["conversions"] == sum(a[1] for a in answers)
    for label, want in slow["g"].items():
        row = fast["groupings"]["g"][label]
        assert row["answers"] == sum(1 for a in answers if a[2] == label)
        assert_cell(row["figures"]["conversion@30m"], want, "conversion@30m")


MOVIES = ("a+2000", "b+2001", "c+2002")


@settings(max_examples=25, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 120), st.integers(1, 3), st.lists(st.sampled_from(MOVIES))),
        max_size=12,
    ),
    st.lists(
        st.tuples(st.integers(0, 150), st.integers(1, 3), st.sampled_from(MOVIES)), max_size=25
    ),
)
def test_each_requests_conversion_agrees_with_the_reference(
    requests: list[tuple[int, int, list[str]]], watches: list[tuple[int, int, str]]
) -> None:
    # Times in minutes, so the 30-minute window's edges come up often.
    rec = pa.table(
        {
            "time": pa.array([T0 + m * 60 * SEC for m, _, _ in requests], pa.timestamp("ns")),
            "user_id": pa.array([u for _, u, _ in requests], pa.int32()),
            "status": pa.array([200] * len(requests), pa.int16()),
            "latency_ms": pa.array(range(len(requests)), pa.int32()),  # a stable order
            "items": pa.array([items for _, _, items in requests], pa.list_(pa.string())),
        }
    )
    watch = pa.table(
        {
            "time": pa.array([T0 + m * 60 * SEC for m, _, _ in watches], pa.timestamp("ns")),
            "user_id": pa.array([u for _, u, _ in watches], pa.int32()),
            "movie_id": pa.array([m for _, _, m in watches], pa.string()),
            "minute": pa.array([0] * len(watches), pa.int32()),
        }
    )
    with contextlib.closing(duckdb.connect()) as con:
        con.register("recommendation", rec)
        con.register("watch", watch)
        con.register("rate", watch.select(["time"]))
        fast = judged_answers(con, 30 * MINUTE_US, 0, final=True)
    t0_us = T0 // 1000
    ordered = sorted(range(len(requests)), key=lambda i: (requests[i][0], requests[i][1], i))
    slow = reference.conversions(
        [(n, t0_us + requests[i][0] * MINUTE_US, requests[i][1], requests[i][2])
         for n, i in enumerate(ordered)],
        [(t0_us + m * MINUTE_US, u, movie) for m, u, movie in watches],
        30 * MINUTE_US,
    )  # fmt: skip
    assert fast["followed"].tolist() == [slow[n] for n in range(len(ordered))]
    assert fast["user_id"].tolist() == [requests[i][1] for i in ordered]


def write_users(store_root: Path, users: list[UserRecord]) -> None:
    cache = CatalogCache(store_root / "catalog.sqlite")
    cache.write([CacheEntry("user", u.user_id, OK, u) for u in users])
    cache.close()


def test_online_conversion_per_group_from_a_hand_made_log(tmp_path: Path) -> None:
    world = OnlineWorld(tmp_path)
    write_users(
        world.store.root,
        [UserRecord(1, 30, "F", "writer"), UserRecord(2, 30, "F", "writer"),
         UserRecord(3, 30, "M", "writer"), UserRecord(4, 30, "M", "writer")],
    )  # fmt: skip
    t = T0 + 8 * DAY_NS
    listed = ("a+2000", "b+2001")
    world.batch(
        # Users 1 and 3 came a week and a day before: returning; 2 and 4 are new.
        watches=[(T0, 1, "z+1990", 0), (T0, 3, "z+1990", 0)],
    )
    world.batch(
        requests=[Request(t, u, items=listed) for u in (1, 2, 3, 4)]
        + [Request(t, 1, status=0)]  # not answered: not judged
        + [Request(t + 3 * 3600 * SEC, 2, items=listed)],  # its window is still open
        watches=[
            (t + 1800 * SEC, 1, "b+2001", 0),  # exactly 30 minutes later: followed
            (t + 60 * SEC, 2, "a+2000", 0),
            (t + 1801 * SEC, 3, "a+2000", 0),  # a second too late
            (t + 60 * SEC, 4, "z+1990", 0),  # not listed
            (t + 3 * 3600 * SEC + 60 * SEC, 2, "a+2000", 0),
            (t + 3 * 3600 * SEC + 30 * 60 * SEC, 9, "a+2000", 0),  # the log runs on
        ],
    )
    report = online_fairness(world.store.root, min_users=2)
    assert report["overall"] == {"users": 4, "answers": 4, "conversions": 2, "conversion@30m": 0.5}
    gender = report["groupings"]["gender"]
    assert (gender["F"]["answers"], gender["F"]["conversions"]) == (2, 2)
    assert gender["M"]["figures"]["conversion@30m"]["ratio"] == 0.0
    assert gender["M"]["figures"]["conversion@30m"]["breach"]
    tenure = report["groupings"]["tenure"]
    assert (tenure["new"]["answers"], tenure["new"]["conversions"]) == (2, 1)
    assert (tenure["returning"]["answers"], tenure["returning"]["conversions"]) == (2, 1)
    assert [(b["grouping"], b["group"]) for b in report["breaches"]] == [("gender", "M")]
    assert report["warnings"] == []
    final = online_fairness(world.store.root, final=True, min_users=2)
    assert (final["overall"]["answers"], final["overall"]["conversions"]) == (5, 3)
    assert json.loads(json.dumps(final, allow_nan=False)) == final


def test_nothing_to_judge_is_said_loudly(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no committed events"):
        online_fairness(tmp_path / "nothing")
    world = OnlineWorld(tmp_path)
    world.batch(watches=[(T0, 1, "a+2000", 0)])
    report = online_fairness(world.store.root)
    assert report["overall"]["answers"] == 0 and report["passed"] is None  # cannot say
    assert any("nothing judged" in w for w in report["warnings"])
    with pytest.raises(ValueError, match="no production version"):
        offline_fairness(world.store.root, tmp_path / "models")


def test_the_trained_model_on_the_simulated_site(
    simulated_store: SimulatedStore, trained_models: Path
) -> None:
    registry = Registry(trained_models)
    version = registry.production()
    assert version is not None
    report = offline_fairness(simulated_store.path, trained_models)
    # The same split, the same refit and the same lists as training's own test: the same
    # overall figures (a multithreaded fit may differ in the last digits).
    recorded = registry.provenance(version)["offline_metrics"]
    assert report["overall"][NDCG] == pytest.approx(recorded[NDCG], rel=1e-3)
    assert report["overall"]["users"] == recorded["users"]
    for grouping, groups in report["groupings"].items():
        assert sum(g["users"] for g in groups.values()) == recorded["users"], grouping
    assert report["warnings"] == []  # the catalogue knows the users
    assert json.loads(json.dumps(report, allow_nan=False)) == report


def test_online_answers_and_conversions_equal_the_simulators_ledger(
    simulated_run: SiteRun,
) -> None:
    report = online_fairness(simulated_run.store, final=True)
    ledger = simulated_run.conversion
    assert report["overall"]["answers"] == ledger["answered"] > 500
    assert report["overall"]["conversions"] == ledger["followed"] > 50
    for grouping, groups in report["groupings"].items():
        assert sum(g["answers"] for g in groups.values()) == ledger["answered"], grouping
