"""The online figures on hand-made logs whose right answers are counted by hand."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec.online.figures import online_report
from movierec.registry.experiments import Arm, Experiments
from tests.support.online import SEC, Answer, OnlineWorld, Request
from tests.support.store import T0

ITEMS = ("a+1990", "b+1991", "c+1992")


def report(world: OnlineWorld, **options) -> dict:
    return online_report(world.store.root, world.models, **options)


def test_conversion_counts_a_listed_watch_within_the_window_and_nothing_else(
    tmp_path: Path,
) -> None:
    world = OnlineWorld(tmp_path)
    t = T0 + 500_000_000  # a fraction of a second, as the site logs requests
    requests = [
        Request(t, 1, items=ITEMS),  # b watched exactly 30 minutes later: followed, rank 2
        Request(t, 2, items=ITEMS),  # watched 1 s too late
        Request(t, 3, items=ITEMS),  # watched before the request
        Request(t, 4, items=ITEMS),  # another user watched its movie
        Request(t, 5, status=0, latency_ms=600),  # a timeout: not answered
        Request(t, 6, items=ITEMS, latency_ms=601),  # answered, but too slow for the site
    ]
    watches = [
        (t + 1800 * SEC, 1, "b+1991", 0),
        (t + 1801 * SEC, 2, "a+1990", 0),
        (t - 60 * SEC, 3, "a+1990", 0),
        (t + 60 * SEC, 99, "a+1990", 0),
        (t + 60 * SEC, 6, "zz+2000", 0),  # not listed
    ]
    answers = [Answer(u, "v1", ITEMS) for u in (1, 2, 3, 4, 6)]
    world.batch(requests, watches, answers=answers)
    overall = report(world, final=True)["overall"]
    assert overall["requests"] == 6 and overall["answered"] == 5
    assert overall["judged"] == 5 and overall["followed"] == 1
    assert overall["conversion@30m"] == pytest.approx(0.2)
    assert overall["chosen_rank"] == 2
    assert overall["availability"] == pytest.approx(4 / 6, abs=1e-6)
    assert overall["timeout_rate"] == pytest.approx(1 / 6, abs=1e-6)
    assert overall["error_rate"] == 0


def test_minutes_and_stars_of_the_chosen_movie_count_within_the_follow_window(
    tmp_path: Path,
) -> None:
    world = OnlineWorld(tmp_path)
    t = T0
    minutes = [(t + (60 + 60 * m) * SEC, 1, "a+1990", m) for m in range(5)]
    duplicate = [(t + 120 * SEC, 1, "a+1990", 1)]  # the same minute twice counts once
    other = [(t + 200 * SEC, 1, "c+1992", 0)]  # a later listed movie is not the chosen one
    world.batch(
        [Request(t, 1, items=ITEMS)],
        minutes + duplicate + other,
        rates=[(t + 900 * SEC, 1, "a+1990", 4)],
        answers=[Answer(1, "v1", ITEMS)],
    )
    overall = report(world, final=True)["overall"]
    assert overall["minutes_watched"] == 5
    assert overall["mean_stars"] == 4 and overall["rated"] == 1
    assert overall["chosen_rank"] == 1


def test_requests_take_the_version_and_arm_that_answered_them(tmp_path: Path) -> None:
    world = OnlineWorld(tmp_path)
    experiments = Experiments(world.models)
    exp = experiments.start([Arm("control", "v1", 0.5), Arm("candidate", "v2", 0.5)], {"v1", "v2"})
    users = np.arange(1, 201)
    arms = {int(u): exp.arm_of(int(u)) for u in users}
    requests, answers = [], []
    for i, user in enumerate(users.tolist()):
        t = T0 + i * SEC
        arm = arms[user]
        if user % 10 == 0:  # a timeout: no answer record; its arm comes from the hash
            requests.append(Request(t, user, status=0, latency_ms=600))
        else:
            items = ("a+1990",) if arm.name == "control" else ("b+1991",)
            requests.append(Request(t, user, items=items))
            answers.append(Answer(user, arm.version, items, exp.id, arm.name))
    world.batch(requests, answers=answers)
    got = report(world, final=True)
    for name in ("control", "candidate"):
        mine = [u for u in users.tolist() if arms[u].name == name]
        figures = got["arms"][f"{exp.id}/{name}"]
        assert figures["requests"] == len(mine)
        assert figures["answered"] == len([u for u in mine if u % 10])
        assert figures["version"] == ("v1" if name == "control" else "v2")
    assert set(got["versions"]) == {"v1", "v2"}
    assert got["pending"]["requests_awaiting_answer_record"] == 0


def test_the_kth_logged_request_pairs_with_the_kth_record_of_the_same_list(
    tmp_path: Path,
) -> None:
    """Two clocks, so order pairs them: the same user got the same list from v1 and then,
    after a swap, from v2."""
    world = OnlineWorld(tmp_path)
    world.batch(
        [Request(T0, 7, items=ITEMS), Request(T0 + 3600 * SEC, 7, items=ITEMS)],
        answers=[Answer(7, "v1", ITEMS), Answer(7, "v2", ITEMS)],
    )
    hours = report(world, final=True)["hours"]
    assert [(h["version"], h["requests"]) for h in hours] == [("v1", 1), ("v2", 1)]


def test_latency_percentiles_are_the_log_latencies_order_statistics(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    latencies = rng.integers(1, 900, 401).tolist()
    world = OnlineWorld(tmp_path)
    world.batch(
        [Request(T0 + i * SEC, i + 1, items=ITEMS, latency_ms=m) for i, m in enumerate(latencies)],
        answers=[Answer(i + 1, "v1", ITEMS) for i in range(len(latencies))],
    )
    overall = report(world, final=True)["overall"]
    assert overall["latency_p50_ms"] == np.quantile(latencies, 0.5, method="inverted_cdf")
    assert overall["latency_p99_ms"] == np.quantile(latencies, 0.99, method="inverted_cdf")
    assert overall["availability"] == pytest.approx(
        sum(ms <= 600 for ms in latencies) / len(latencies), abs=1e-6
    )


def test_a_store_without_events_is_refused_loudly(tmp_path: Path) -> None:
    world = OnlineWorld(tmp_path)
    with pytest.raises(ValueError, match="no committed events"):
        report(world)


def test_a_state_made_with_another_window_is_refused(tmp_path: Path) -> None:
    world = OnlineWorld(tmp_path)
    world.batch([Request(T0, 1, items=ITEMS)], answers=[Answer(1, "v1", ITEMS)])
    report(world, state=tmp_path / "state")
    with pytest.raises(ValueError, match="made with"):
        report(world, state=tmp_path / "state", window_minutes=60)


MOVIES = ("a+1990", "b+1991", "c+1992", "d+1993", "e+1994", "f+1995")
_SKIP = ("generated_at", "read", "seconds", "counters")


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), cuts=st.lists(st.integers(1, 59), max_size=4, unique=True))
def test_a_rerun_over_a_grown_store_equals_one_run_over_all_of_it(
    tmp_path_factory: pytest.TempPathFactory, seed: int, cuts: list[int]
) -> None:
    rng = np.random.default_rng(seed)
    exp = Experiments(tmp_path_factory.mktemp("e")).start(
        [Arm("control", "v1", 0.5), Arm("candidate", "v2", 0.5)], {"v1", "v2"}
    )
    events = []  # (t, kind, payload) in log order over six hours
    for i in range(60):
        t = T0 + int(i * 360 * SEC + rng.integers(0, 300) * SEC)
        user = int(rng.integers(1, 8))
        arm = exp.arm_of(user)
        if rng.random() < 0.15:
            events.append((t, Request(t, user, status=0, latency_ms=600), None))
            continue
        items = tuple(rng.choice(MOVIES, 3, replace=False).tolist())
        recorded = rng.random() > 0.1
        if not recorded:
            # A list no other answer repeats: pairing by order cannot tell which of a
            # user's equal lists lacks its record, so one run and reruns may pair such
            # lists differently (docs/monitoring.md, Attribution).
            items = (*items[:2], f"x{i}+2000")
        record = Answer(user, arm.version, items, exp.id, arm.name) if recorded else None
        latency = int(rng.integers(1, 700))
        events.append((t, Request(t, user, items=items, latency_ms=latency), record))
        for _ in range(int(rng.integers(0, 3))):
            when = t + int(rng.integers(1, 3000)) * SEC
            events.append((when, (when, user, str(rng.choice(MOVIES)), 0), None))
    events.sort(key=lambda e: e[0])
    step = tmp_path_factory.mktemp("step")
    whole = tmp_path_factory.mktemp("whole")
    for root in (step, whole):
        (root / "models" / "experiments").mkdir(parents=True)
        exp_dir = Experiments(root / "models")
        (exp_dir.history_dir / f"{exp.id}.json").write_text(json.dumps(exp.to_json()))
    stepped, single = OnlineWorld(step), OnlineWorld(whole)
    bounds = [0, *sorted(c * len(events) // 60 for c in cuts), len(events)]
    for low, high in itertools.pairwise(bounds):
        part = events[low:high]
        requests = [e[1] for e in part if isinstance(e[1], Request)]
        watches = [e[1] for e in part if isinstance(e[1], tuple)]
        answers = [e[2] for e in part if e[2] is not None]
        stepped.batch(requests, watches, answers=answers)
        single.batch(requests, watches, answers=answers)
        online_report(stepped.store.root, stepped.models, state=step / "state")
    got = online_report(stepped.store.root, stepped.models, state=step / "state")
    want = online_report(single.store.root, single.models)
    # Each line was read once, by the run after its batch; the last run read nothing.
    assert got["read"] == {
        "recommendation_lines": 0,
        "watch_and_rate_lines": 0,
        "answer_records": 0,
    }
    assert got["counters"]["recommendation_lines_read"] == want["read"]["recommendation_lines"]
    for section in ("overall", "versions", "arms"):
        for key in got[section] if section != "overall" else [None]:
            a = got[section] if key is None else got[section][key]
            b = want[section] if key is None else want[section].get(key, {})
            diff = {k: (a[k], b.get(k)) for k in a if a[k] != b.get(k)}
            assert not diff, (section, key, diff)
    assert {k: v for k, v in got.items() if k not in _SKIP} == {
        k: v for k, v in want.items() if k not in _SKIP and k != "answer_log"
    } | {"answer_log": got["answer_log"]}
