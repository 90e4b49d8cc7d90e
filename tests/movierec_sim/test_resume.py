"""`movierec simulate --state`: a run split into resumed pieces is the run it would have been
had it never stopped; after a kill the clock never logs a simulated period twice.

These tests run the resumable run in-process against a stand-in service whose answers
never depend on timing (`FixedService`): with a real service, or none, each logged call
carries its measured latency, which differs between any two runs, so only a stand-in
makes "the same log bytes" exact. Everything else in a line (times, users, movies, dirt,
late lines) comes from the seeded draws and is compared byte for byte.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.stream.locallog import LocalLogSink
from movierec_sim import engine
from movierec_sim.checkpoint import CheckpointError, differences
from movierec_sim.config import SimConfig
from movierec_sim.faults import FaultConfig
from movierec_sim.recclient import CallOutcome
from movierec_sim.resume import ResumableRun, StateDir
from movierec_sim.world import DEFAULT_START, World, WorldConfig
from tests.support.logcheck import parse_time

DAY = 86_400
# What the ledgers of a split run and of one run must share (timings aside).
COUNTS = (
    "lines",
    "clean",
    "faults",
    "fault_lines",
    "reordered",
    "expected_ingest",
    "invalid_requests",
    "online",
)


class FixedService:
    """A service answering by user id alone: a third of calls refused, the rest twenty
    movies, latency fixed; invalid requests get 400. The same answers however it is timed."""

    label = "127.0.0.1:8082"

    def __init__(self, movie_ids: list[str]) -> None:
        self.movie_ids = movie_ids

    def call_many(self, paths: list[str]) -> list[CallOutcome]:
        return [self._answer(path) for path in paths]

    def _answer(self, path: str) -> CallOutcome:
        tail = path.removeprefix("/recommend/")
        if not tail.isdigit() or tail.startswith("0"):
            return CallOutcome(400, "bad request", 1)
        user = int(tail)
        if user % 3 == 0:
            return CallOutcome(0, "Connection refused: 127.0.0.1/127.0.0.1:8082", 0)
        n = len(self.movie_ids)
        items = tuple(self.movie_ids[(user * 7 + k * 13) % n] for k in range(20))
        return CallOutcome(200, ", ".join(items), 4, items)

    def close(self) -> None:
        pass


def use_fixed_service(monkeypatch: pytest.MonkeyPatch, world: World) -> None:
    """Every Simulation built from now on calls FixedService instead of the network."""

    def client(*_: Any, **__: Any) -> FixedService:
        return FixedService(world.movie_ids)

    monkeypatch.setattr(engine, "RecommendationClient", client)


@pytest.fixture
def world(monkeypatch: pytest.MonkeyPatch) -> World:
    built = World(WorldConfig(users=300, movies=100, seed=3))
    use_fixed_service(monkeypatch, built)
    return built


def one_run(folder: Path, world: World, days: float, **config: Any) -> tuple[dict, bytes]:
    """A plain run, without --state."""
    path = folder / "one.log"
    sink = LocalLogSink(path)
    try:
        ledger = engine.Simulation(world, SimConfig(days=days, **config), sink).run()
    finally:
        sink.close()
    return ledger, path.read_bytes()


def piece(folder: Path, world: World, days: float, every: int = 3600, **config: Any) -> dict:
    """One invocation of `movierec simulate --state folder/state --days days`."""
    store = StateDir(folder / "state")
    sink = LocalLogSink(folder / "log")
    try:
        run = ResumableRun(
            store,
            store.load(),
            world,
            SimConfig(days=days, **config),
            sink,
            f"file://{folder / 'log'}",
            every=every,
        )
        return run.run()
    finally:
        sink.close()


def same_counts(a: dict, b: dict) -> None:
    for key in COUNTS:
        assert a[key] == b[key], key
    assert a["recommendation_calls"]["by_status"] == b["recommendation_calls"]["by_status"]
    for key in ("seconds", "visits"):
        assert a["simulated"][key] == b["simulated"][key], key


SETTINGS: dict[str, Any] = {
    "seed": 7,
    "faults": FaultConfig.build(0.1),
    "request_faults": 0.05,
    "oracle_share": 0.5,  # below 1 so the oracle's draws count (all visits otherwise)
}


def test_two_days_are_one_day_and_one_resumed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, small_world: World
) -> None:
    world = small_world
    use_fixed_service(monkeypatch, world)
    whole, log = one_run(tmp_path, world, 2, **SETTINGS)
    first = piece(tmp_path, world, 1, **SETTINGS)
    assert first["simulated"]["seconds"] == DAY and first["resumed"] == []
    second = piece(tmp_path, world, 1, **SETTINGS)
    assert (tmp_path / "log").read_bytes() == log
    same_counts(second, whole)
    assert second["recommendation_calls"]["by_status"].keys() == {"0", "200"}
    assert second["online"]["conversion@30m"]["followed"] > 0
    assert second["resumed"] == [
        {
            "from_checkpoint_t": DAY,
            "skipped_to_t": DAY,
            "lines_after_checkpoint": 0,
            "late_lines_dropped": 0,
        }
    ]
    # One checkpoint at the start, one per simulated hour (the tick is an hour), none extra
    # at the stop: the last hour's covers it.
    assert first["checkpoints"]["written"] == 1 + 24 + 1


@settings(max_examples=6, deadline=None)
@given(st.lists(st.integers(1, 30), min_size=2, max_size=4))
def test_any_split_gives_the_log_of_one_run(hours: list[int]) -> None:
    config = {**SETTINGS, "tick_seconds": 900}
    with tempfile.TemporaryDirectory() as name, pytest.MonkeyPatch.context() as patch:
        folder = Path(name)
        world = World(WorldConfig(users=300, movies=100, seed=3))
        use_fixed_service(patch, world)
        for h in hours:
            last = piece(folder, world, h / 24, every=5400, **config)
        whole, log = one_run(folder, world, sum(hours) / 24, **config)
        assert last["simulated"]["seconds"] == sum(hours) * 3600
        assert (folder / "log").read_bytes() == log
        same_counts(last, whole)
        assert len(last["resumed"]) == len(hours) - 1


def test_pacing_restarts_from_the_resumed_time(tmp_path: Path, world: World) -> None:
    piece(tmp_path, world, 0.25, tick_seconds=300)
    started = time.monotonic()
    # Six ticks of 300 s at 1800 simulated seconds a second: five waits of 1/6 s. Paced
    # from t = 0 instead, it would wait 6 h / 1800 = 12 s before its first tick.
    ledger = piece(tmp_path, world, 1800 / DAY, speed=1800, tick_seconds=300)
    took = time.monotonic() - started
    assert ledger["simulated"]["seconds"] == 0.25 * DAY + 1800
    assert 0.7 < took < 5, took


class KilledError(Exception):
    """The process dies here: no clean stop, no last checkpoint."""


def _kill_after(ticks: int) -> Iterator[bool]:
    yield from [False] * ticks
    raise KilledError


def test_after_a_kill_the_clock_skips_what_may_be_logged(tmp_path: Path, world: World) -> None:
    config = {"seed": 3, "tick_seconds": 600}
    piece(tmp_path, world, 0.5, every=4 * 3600, **config)
    # KilledError 7 ticks (70 simulated minutes) after the 12 h checkpoint; the next is at 16 h.
    store, sink, stops = (
        StateDir(tmp_path / "state"),
        LocalLogSink(tmp_path / "log"),
        _kill_after(7),
    )
    url = f"file://{tmp_path / 'log'}"
    run = ResumableRun(store, store.load(), world, SimConfig(**config), sink, url, every=4 * 3600)
    with pytest.raises(KilledError):
        run.run(should_stop=lambda: next(stops))
    sink.close()
    state = store.load()
    assert state is not None and state["t"] == DAY // 2
    assert store.read_mark() == DAY // 2 + 7 * 600
    before = (tmp_path / "log").read_bytes()
    tail = before[state["log_bytes"] :]
    assert tail.count(b"\n") > 0
    with (tmp_path / "log").open("ab") as log:  # the kill tore the last line
        log.write(b"2025-01-01T13:10:0")
    ledger = piece(tmp_path, world, 0.25, **config)
    after = (tmp_path / "log").read_bytes()
    assert after.startswith(before + b"2025-01-01T13:10:0\n")  # nothing earlier altered
    assert ledger["resumed"][-1] == {
        "from_checkpoint_t": DAY // 2,
        "skipped_to_t": DAY // 2 + 7 * 600,
        "lines_after_checkpoint": tail.count(b"\n") + 1,
        "late_lines_dropped": 0,
    }
    lines = after.split(b"\n")[:-1]
    assert ledger["lines"] == len(lines)  # line numbers stay the log's
    assert ledger["unaccounted"] == tail.count(b"\n") + 1
    assert ledger["simulated"]["seconds"] == DAY // 2 + 7 * 600 + DAY // 4
    old = len(before.split(b"\n")) - 1
    resumed_at = DEFAULT_START.replace(tzinfo=None) + timedelta(seconds=DAY // 2 + 4200)
    times = [parse_time(line.split(b",", 1)[0].decode()) for line in lines[old + 1 :]]
    assert times and min(times) >= resumed_at  # no period logged twice
    everything = [parse_time(x.split(b",", 1)[0].decode()) for x in lines[:old]]
    assert everything == sorted(everything) and max(everything) < resumed_at
    assert times == sorted(times)


def test_lines_after_the_checkpoint_without_a_mark_are_refused(
    tmp_path: Path, world: World
) -> None:
    piece(tmp_path, world, 0.1, tick_seconds=600)
    with (tmp_path / "log").open("ab") as log:
        log.write(b"2025-01-01T03:00:00,1,GET /data/m/x+2000/0.mpg\n")
    (tmp_path / "state" / "written").unlink()
    with pytest.raises(CheckpointError, match="log a simulated period twice"):
        piece(tmp_path, world, 0.1, tick_seconds=600)


def test_another_world_or_site_is_named(tmp_path: Path, world: World) -> None:
    piece(tmp_path, world, 0.05, tick_seconds=600)
    state = StateDir(tmp_path / "state").load()
    assert state is not None
    same = SimConfig(seed=3, days=5, speed=60, service="http://127.0.0.1:1", tick_seconds=None)
    assert differences(state, world.config, same) == []
    found = differences(
        state,
        WorldConfig(users=301, movies=100, seed=3),
        SimConfig(seed=3, start="2025-02-01T00:00:00", tick_seconds=300),
    )
    assert [text.split(":")[0] for text in found] == ["users", "start", "tick_seconds"]
    assert found[0] == "users: 300 in the state, 301 given"
