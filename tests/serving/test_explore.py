"""Exploration slots: the last k positions drawn from the snapshot's long tail, never seen,
never twice, the same all day for a user; the tail pool against a slow reference; a real
service with the setting, and an experiment whose arms differ only by it, started from
`movierec experiment start`."""

from __future__ import annotations

import http.client
import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.cli import main
from movierec.http.server import ServerThread
from movierec.models.base import LIST_LENGTH
from movierec.registry.experiments import Experiments
from movierec.serving.app import RecommendationService
from movierec.serving.explore import (
    Exploration,
    TailPool,
    draw_key,
    explore,
    seen_items,
    tail_pool_of,
)
from movierec.serving.loader import ModelLoader
from tests.models.contract import planted_data
from tests.support.serving import HandMadeModels, hand_made_models, request

USERS = [1000 + u for u in range(28)]  # every planted user with a history
STRANGERS = [7_000_000 + u for u in range(12)]  # nobody knows them: the popular list


@st.composite
def cases(draw: st.DrawFn) -> tuple[np.ndarray, TailPool, int, set[int], int]:
    n = draw(st.integers(1, 60))
    items = st.integers(0, n - 1)
    pool = sorted(draw(st.sets(items)))
    # A ranked array as the service meets one: mostly distinct, sometimes padded with -1
    # or repeating an item (a fresh list topped up by hand), of any length.
    ranked = draw(st.lists(st.one_of(items, st.just(-1)), max_size=45))
    seen = draw(st.sets(items))
    slots = draw(st.integers(0, LIST_LENGTH))
    key = draw(st.integers(0, 2**64 - 1))
    tail = TailPool("v", tuple(pool), frozenset(set(range(n)) - set(pool)), 0)
    return np.array(ranked, dtype=np.int32), tail, slots, seen, key


@settings(max_examples=400)  # short lists with repeats are a small corner of the space
@given(cases())
def test_exploration_keeps_the_list_and_fills_its_slots_from_the_pool(case: tuple) -> None:
    ranked, pool, slots, seen, key = case
    got = explore(ranked, pool, slots, seen, key).tolist()
    assert got == explore(ranked, pool, slots, seen, key).tolist()  # the same key, the same
    assert len(got) == len(set(got)) and all(i >= 0 for i in got)
    # The slow way: the first 20 - k distinct items, in their order...
    first: list[int] = []
    for item in ranked.tolist():
        if item >= 0 and item not in first and len(first) < LIST_LENGTH - slots:
            first.append(item)
    assert got[: len(first)] == first
    # ...then k pool items neither in them nor seen, as many as there are up to k...
    free = [i for i in pool.items if i not in first and i not in seen]
    drawn = got[len(first) : len(first) + min(slots, len(free))]
    assert len(drawn) == min(slots, len(free))
    assert set(drawn) <= set(free)
    # ...then the rest of the list, in its order, as spares.
    rest = [i for i in dict.fromkeys(ranked.tolist()) if i >= 0 and i not in first + drawn]
    assert got[len(first) + len(drawn) :] == rest
    answered = got[:LIST_LENGTH]
    if len(free) >= slots and len(first) == LIST_LENGTH - slots:
        assert answered[LIST_LENGTH - slots :] == drawn  # exactly k, in the last k positions


def reference_pool(counts: list[int], head_share: float) -> tuple[set[int], list[int]]:
    """The head the obvious way: sort by count (most first, then index), keep the first
    ceil(share * n) that were shown at all."""
    order = sorted(range(len(counts)), key=lambda i: (-counts[i], i))
    head = {i for i in order[: math.ceil(head_share * len(counts))] if counts[i] > 0}
    return head, [i for i in range(len(counts)) if i not in head]


@given(st.lists(st.integers(0, 30), min_size=1, max_size=80), st.floats(0, 0.95))
def test_the_tail_pool_is_everything_but_the_most_shown(counts: list[int], share: float) -> None:
    pool = tail_pool_of("v1", np.array(counts, dtype=np.int64), share)
    head, rest = reference_pool(counts, share)
    assert pool.head == head and list(pool.items) == rest


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> HandMadeModels:
    return hand_made_models(tmp_path_factory.mktemp("models"), planted_data())


def test_a_users_draw_holds_all_day_and_changes_with_the_day(models: HandMadeModels) -> None:
    snapshot = models.snapshot()
    exploration = Exploration(slots=5)
    pool = exploration.pool_of(snapshot)
    assert pool.size == 32 and len(pool.head) == 8  # 40 items, a fifth of them the head
    today, tomorrow = [], []
    for user in USERS:
        ranked = snapshot.lists[snapshot.row(user)]
        once = exploration.ranked(snapshot, user, ranked, 5, day=20_000).tolist()
        assert once == exploration.ranked(snapshot, user, ranked, 5, day=20_000).tolist()
        today.append(once[15:20])
        tomorrow.append(exploration.ranked(snapshot, user, ranked, 5, day=20_001)[15:20].tolist())
    assert today != tomorrow  # 28 users' draws of two days: not all alike
    assert len({tuple(sorted(d)) for d in today}) > 10  # users draw different tail movies
    assert draw_key(1000, 20_000, pool.seed) != draw_key(1000, 20_000, pool.seed + 1)


def get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


@pytest.fixture
def exploring(models: HandMadeModels) -> Iterator[tuple[RecommendationService, int]]:
    """A real service with five exploration slots, on loopback."""
    service = RecommendationService(models.registry.root, sample=0.0, explore_slots=5)
    assert ModelLoader(service).check()
    server = ServerThread(service.http_server()).start()
    try:
        yield service, server.port
    finally:
        server.stop()


def test_a_service_with_the_setting_answers_with_tail_movies_in_its_last_slots(
    exploring: tuple[RecommendationService, int], models: HandMadeModels
) -> None:
    service, port = exploring
    snapshot = service.snapshot
    assert snapshot is not None
    pool = service.exploration.pool_of(snapshot)
    names = {item: i for i, item in enumerate(snapshot.items)}
    for user in [*USERS, *STRANGERS]:
        status, body = get(port, f"/recommend/{user}")
        assert status == 200
        got = [names[m] for m in body.split(b",")]
        row = snapshot.row(user)
        plain = [i for i in (snapshot.lists[row] if row >= 0 else snapshot.popular) if i >= 0]
        assert len(got) == len(set(got)) == LIST_LENGTH, user
        assert got[:15] == plain[:15]  # the list as it was, then five from the tail
        assert set(got[15:]) <= set(pool.items)
        assert not set(got[15:]) & set(seen_items(snapshot, user))
        assert set(seen_items(snapshot, user)) == set(snapshot.history(user).tolist())
    health = json.loads(get(port, "/healthz")[1])
    assert health["explore"] == {"slots": 5, "head_share": 0.2, "pools": {models.version: 32}}


def test_an_arm_with_slots_beside_an_arm_without_on_one_version(
    models: HandMadeModels, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = models.registry.root
    started = main(
        ["experiment", "start", "--models", str(root), "--arm", f"plain={models.version}:0.5",
         "--arm", f"explore={models.version}:0.5", "--explore", "explore=6"]
    )  # fmt: skip
    assert started == 0
    first = json.loads(capsys.readouterr().out)
    assert [a.get("explore_slots") for a in first["arms"]] == [None, 6]
    # A second experiment keeping the first one's split: every user keeps their arm.
    again = ["--split-of", first["id"], "--explore", "explore=6"]
    arms = ["--arm", f"plain={models.version}:0.5", "--arm", f"explore={models.version}:0.5"]
    assert main(["experiment", "start", "--models", str(root), *arms, *again]) == 0
    second = Experiments(root).current()
    assert second is not None and second.salt == first["salt"] and second.id != first["id"]
    try:
        service = RecommendationService(root, tmp_path / "answers", sample=1.0)
        loader = ModelLoader(service)
        assert loader.check() and loader.check_experiment() and service.plan is not None
        snapshot = service.plan.snapshots["plain"]
        assert snapshot is service.plan.snapshots["explore"]  # one version, one snapshot
        pool = set(service.exploration.pool_of(snapshot).items)
        arms_seen = set()
        for user in [*USERS, *STRANGERS]:
            arm = second.arm_of(user)
            arms_seen.add(arm.name)
            response = service.handle(request(f"/recommend/{user}"))
            got = response.body.split(b",")
            row = snapshot.row(user)
            plain = snapshot.body(snapshot.lists[row] if row >= 0 else snapshot.popular)
            if arm.name == "plain":
                assert response.body == plain
            else:
                assert got[:14] == plain.split(b",")[:14] and len(set(got)) == LIST_LENGTH
                assert {snapshot.items.index(m) for m in got[14:]} <= pool
        assert arms_seen == {"plain", "explore"}
        service.answers.flush()
        logged = [
            json.loads(line)
            for path in (tmp_path / "answers").glob("*.jsonl")
            for line in path.read_text().splitlines()
        ]
        assert {(r["user"], r["arm"]) for r in logged} == {
            (u, second.arm_of(u).name) for u in [*USERS, *STRANGERS]
        }
    finally:
        Experiments(root).stop()
        service.answers.close()


def test_bad_settings_are_refused(models: HandMadeModels, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(ValueError, match=r"within 0\.\.20"):
        Exploration(slots=21)
    root = str(models.registry.root)
    arms = ["--arm", f"a={models.version}:0.5", "--arm", f"b={models.version}:0.5"]
    assert main(["experiment", "start", "--models", root, *arms, "--explore", "c=3"]) == 2
    assert "not in the experiment: ['c']" in capsys.readouterr().err
    assert main(["experiment", "start", "--models", root, *arms, "--explore", "b=21"]) == 2
    assert "explore_slots 21" in capsys.readouterr().err
    assert main(["experiment", "start", "--models", root, *arms, "--split-of", "exp-none"]) == 2
    assert "no experiment 'exp-none'" in capsys.readouterr().err
    assert Experiments(models.registry.root).current() is None
