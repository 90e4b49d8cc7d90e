"""The simulated event stream against the ledger, line by line."""

from __future__ import annotations

import re
import time
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest

from movierec_sim.faults import FAULT_KINDS, REPLACING, FaultConfig
from movierec_sim.world import World, WorldConfig
from tests.movierec_sim.conftest import simulate
from tests.support.logcheck import REC_RE, classify, parse_time


class Everything:
    def __contains__(self, item: object) -> bool:
        return True


def test_every_line_is_what_the_ledger_says(tmp_path: Path, small_world: World) -> None:
    run = simulate(tmp_path, small_world, seed=7, events=60_000, faults=FaultConfig.build(0.12))
    ledger, lines, movies = run.ledger, run.lines, run.world.movie_index
    assert len(lines) == ledger["lines"] == 60_000
    fault_at = {n: kind for kind, ns in ledger["fault_lines"].items() for n in ns}
    assert sum(ledger["faults"].values()) + sum(ledger["clean"].values()) == len(lines)
    assert {k: len(v) for k, v in ledger["fault_lines"].items()} == {
        k: v for k, v in ledger["faults"].items() if v
    }
    clean: dict[str, int] = dict.fromkeys(("watch", "rate", "recommendation"), 0)
    seen: set[bytes] = set()
    newest = None
    for number, raw in enumerate(lines, start=1):
        kind = fault_at.get(number)
        facts = classify(raw, movies)
        if kind is None:
            assert facts is not None, f"line {number} is dirty but not in the ledger: {raw!r}"
            clean[facts[0]] += 1
            newest = max(newest or facts[1], facts[1])
        elif kind == "duplicate":
            assert facts is not None and raw in seen, f"line {number} is no duplicate: {raw!r}"
        elif kind == "unknown_movie":
            assert facts is None and classify(raw, Everything()) is not None, raw
        elif kind == "future_timestamp":
            assert facts is not None and facts[1] > newest + timedelta(days=2), raw
        else:
            assert facts is None, f"line {number} ({kind}) is valid: {raw!r}"
        seen.add(raw)
    assert clean == ledger["clean"]
    assert ledger["reordered"]["total"] == len(ledger["reordered"]["lines"]) > 0
    for number in ledger["reordered"]["lines"]:
        assert number not in fault_at and classify(lines[number - 1], movies) is not None
    expected = ledger["expected_ingest"]
    assert expected["stored"] == ledger["clean"]
    assert expected["duplicates"] + expected["rejected"] == sum(ledger["faults"].values())


def test_every_kind_of_dirt_occurs_near_its_share(tmp_path: Path, small_world: World) -> None:
    run = simulate(tmp_path, small_world, seed=3, events=120_000, faults=FaultConfig.build(0.05))
    share = 0.05 / len(FAULT_KINDS) * 120_000
    for kind in (*REPLACING, "duplicate"):
        assert 0.75 * share < run.ledger["faults"][kind] < 1.25 * share, kind
    assert 0.75 * share < run.ledger["reordered"]["total"] < 1.25 * share


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_one_switch_makes_one_kind_of_dirt(tmp_path: Path, small_world: World, kind: str) -> None:
    run = simulate(
        tmp_path, small_world, seed=1, events=8000, faults=FaultConfig.build(0.0, {kind: 0.03})
    )
    dirty = {k: v for k, v in run.ledger["faults"].items() if v}
    if kind == "out_of_order":
        assert dirty == {} and run.ledger["reordered"]["total"] > 100
    else:
        assert set(dirty) == {kind} and dirty[kind] > 100


def _masked(lines: list[bytes]) -> list[bytes]:
    return [re.sub(rb", \d+ ms$", b", X ms", line) for line in lines]


def test_the_same_seed_gives_the_same_lines(tmp_path: Path, small_world: World) -> None:
    # Without dirt, every line is the same but for the measured call latencies.
    settings = {"seed": 11, "events": 30_000, "request_faults": 0.1}
    first = simulate(tmp_path, small_world, **settings)
    second = simulate(tmp_path, World(WorldConfig(users=2000, movies=500, seed=7)), **settings)
    assert _masked(first.lines) == _masked(second.lines)
    other = simulate(tmp_path, small_world, **{**settings, "seed": 12})
    assert _masked(other.lines) != _masked(first.lines)


def test_the_same_seed_gives_the_same_dirt(tmp_path: Path, small_world: World) -> None:
    settings = {"seed": 11, "events": 30_000, "faults": FaultConfig.build(0.1)}
    first = simulate(tmp_path, small_world, **settings)
    second = simulate(tmp_path, small_world, **settings)
    for part in ("clean", "faults", "fault_lines", "reordered"):
        assert first.ledger[part] == second.ledger[part]
    # Dirt made of a recommendation line carries its latency; every other line is equal.
    faulty = {n for numbers in first.ledger["fault_lines"].values() for n in numbers}
    for number, (a, b) in enumerate(zip(first.lines, second.lines, strict=True), start=1):
        if number not in faulty and b"recommendation request" not in a:
            assert a == b


def test_a_tiny_world_runs(tmp_path: Path) -> None:
    world = World(WorldConfig(users=100, movies=50, seed=2))
    run = simulate(tmp_path, world, seed=2, days=20, faults=FaultConfig.build(0.05))
    assert run.ledger["lines"] == len(run.lines) > 1000
    assert run.ledger["simulated"]["days"] == 20


def test_users_join_and_movies_arrive_over_time(tmp_path: Path) -> None:
    world = World(WorldConfig(users=400, movies=120, seed=4))
    run = simulate(tmp_path, world, seed=4, days=60)
    start = parse_time("2025-01-01T00:00:00")
    late_users, late_movies = set(), set()
    for raw in run.lines:
        kind, when = classify(raw, world.movie_index)
        _, user, rest = raw.decode().split(",", 2)
        day = (when - start).total_seconds() / 86400
        assert world.user_join_day[int(user) - 1] <= day + 2 / 86400  # whole seconds
        if world.user_join_day[int(user) - 1] > 0:
            late_users.add(user)
        if kind == "watch":
            m = world.movie_index[rest.split("/")[3]]
            assert world.movie_release_day[m] <= np.floor(day) + 1e-6
            if world.movie_release_day[m] > 0:
                late_movies.add(m)
    assert len(late_users) > 10 and len(late_movies) > 0


def test_users_call_the_service_and_follow_what_it_shows(
    tmp_path: Path, small_world: World, service
) -> None:
    popular = [small_world.movie_ids[m] for m in np.argsort(-small_world.movie_popularity)[:20]]
    url = service(lambda path: (200, ",".join(popular).encode(), 0))
    run = simulate(tmp_path, small_world, seed=5, events=40_000, service=url, oracle_share=1.0)
    calls = run.ledger["recommendation_calls"]
    assert calls["by_status"] == {"200": calls["total"]} and calls["total"] > 200
    rec_lines = [m for raw in run.lines if (m := REC_RE.fullmatch(raw.decode()))]
    assert len(rec_lines) == run.ledger["clean"]["recommendation"]
    assert all(
        m[5] == ", ".join(popular) and m[3] == url.removeprefix("http://") for m in rec_lines
    )
    online = run.ledger["online"]
    assert 0 < online["service"]["share"] < online["oracle"]["share"]
    oracle = online["oracle"]
    assert oracle["expected_share"] > oracle["service_expected_share_same_visits"]


def test_failed_calls_are_logged_as_the_site_does(
    tmp_path: Path, small_world: World, service
) -> None:
    def answer(path: str) -> tuple[int, bytes, float]:
        user = int(path.rsplit("/", 1)[1])
        if user % 3 == 0:
            return 200, b"", 1.0  # too late: the site gave up after 600 ms
        if user % 3 == 1:
            return 500, b"internal error\nsecond line", 0
        return 404, b"no such user", 0

    url = service(answer)
    run = (
        simulate(tmp_path, small_world, seed=6, events=3000, service=url, separator=",")
        if False
        else simulate(tmp_path, small_world, seed=6, events=3000, service=url)
    )
    host = url.removeprefix("http://")
    seen = set()
    for raw in run.lines:
        m = REC_RE.fullmatch(raw.decode())
        if not m:
            continue
        user, status, result, latency = int(m[2]), m[4], m[5], int(m[6])
        if user % 3 == 0:
            assert status == "0" and latency >= 600
            assert result == (
                f"java.util.concurrent.TimeoutException: Request timeout to "
                f"127.0.0.1/{host} after 600 ms"
            )
        elif user % 3 == 1:
            assert (status, result) == ("500", "internal error second line")
        else:
            assert (status, result) == ("404", "no such user")
        seen.add(user % 3)
    assert seen == {0, 1, 2}


def test_a_refused_call_is_status_zero(tmp_path: Path, small_world: World) -> None:
    run = simulate(tmp_path, small_world, seed=8, events=2000)
    statuses = run.ledger["recommendation_calls"]["by_status"]
    assert list(statuses) == ["0"]
    m = next(m for raw in run.lines if (m := REC_RE.fullmatch(raw.decode())))
    assert m[5] == "Connection refused: 127.0.0.1/127.0.0.1:9"


def test_invalid_requests_reach_the_service_but_not_the_log(
    tmp_path: Path, small_world: World, service
) -> None:
    paths: list[str] = []

    def answer(path: str) -> tuple[int, bytes, float]:
        paths.append(path)
        ok = re.fullmatch(r"/recommend/[1-9]\d{0,8}", path)
        return (200, small_world.movie_ids[0].encode(), 0) if ok else (400, b"bad user id", 0)

    url = service(answer)
    run = simulate(tmp_path, small_world, seed=9, events=20_000, service=url, request_faults=0.5)
    invalid = run.ledger["invalid_requests"]
    total_invalid = sum(sum(by_status.values()) for by_status in invalid.values())
    assert total_invalid > 50 and len(invalid) >= 5
    assert all(set(by_status) <= {"400", "0"} for by_status in invalid.values()), str(invalid)
    assert len(paths) == run.ledger["recommendation_calls"]["total"] + total_invalid
    assert run.ledger["faults"] == dict.fromkeys(run.ledger["faults"], 0)


def test_separator_and_rating_scale_settings(tmp_path: Path, small_world: World, service) -> None:
    ids = small_world.movie_ids[:3]
    url = service(lambda path: (200, ",".join(ids).encode(), 0))
    run = simulate(
        tmp_path,
        small_world,
        seed=10,
        events=30_000,
        service=url,
        result_separator=",",
        rating_scale=10,
    )
    text = b"\n".join(run.lines).decode()
    assert f"result: {','.join(ids)}, " in text
    stars = [int(x) for x in re.findall(r"GET /rate/[^=]+=(\d+)", text)]
    assert stars and max(stars) > 5 and min(stars) >= 1 and max(stars) <= 10


def test_speed_paces_simulated_time(tmp_path: Path) -> None:
    world = World(WorldConfig(users=100, movies=50, seed=1))
    started = time.monotonic()
    simulate(tmp_path, world, seed=1, days=1 / 24, speed=3600 / 0.8, tick_seconds=60)
    assert time.monotonic() - started >= 0.7  # one simulated hour took at least 0.8 s
