"""The retraining scheduler on a small simulated site whose log arrives in two halves:
nothing to train on, the first model promoted, no retraining without a new batch, a
retrained candidate past the gate going to a canary (not to production), and a restarted
scheduler keeping its clock."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from movierec.ingest.runner import IngestConfig, Ingestor
from movierec.registry.experiments import Experiments
from movierec.registry.versions import Registry
from movierec.release.canary import running, start_canary
from movierec.release.canary_rules import CanaryConfig
from movierec.release.scheduler import STATE, ScheduleCommand, Scheduler
from movierec_sim.api import SiteApiServer
from movierec_sim.world import World, WorldConfig
from tests.support.simulated import simulate_into


@pytest.fixture(scope="module")
def halves(tmp_path_factory: pytest.TempPathFactory) -> tuple[World, list[bytes], list[bytes]]:
    """A month of a 300-user site's log, cut in two halves by line."""
    root = tmp_path_factory.mktemp("log")
    world = World(WorldConfig(users=300, movies=100, seed=11))
    simulate_into(f"file://{root / 'log'}", world, 60_000, 0.0)
    lines = (root / "log").read_bytes().splitlines(keepends=True)
    return world, lines[:30_000], lines[30_000:]


def ingest(world: World, log: Path, store: Path, lines: list[bytes]) -> None:
    with log.open("ab") as out:
        out.writelines(lines)
    with SiteApiServer(world, port=0) as api:
        Ingestor(IngestConfig(source=f"file://{log}", store=str(store), api=api.url)).run()


def command(root: Path, **settings: object) -> ScheduleCommand:
    chosen = {"every": 0.001, "min_events": 1000, "budget_seconds": 0.0, "quiet": True}
    return ScheduleCommand(
        store=str(root / "store"), models_dir=str(root / "models"), **{**chosen, **settings}
    )


def test_train_when_due_then_canary_not_production(
    halves: tuple[World, list[bytes], list[bytes]], tmp_path: Path
) -> None:
    world, first, second = halves
    scheduler = Scheduler(command(tmp_path), lambda *_, **__: None)
    assert scheduler.tick() is None  # no store yet: nothing done, and nothing broken

    ingest(world, tmp_path / "log", tmp_path / "store", first)
    trained = scheduler.tick()
    assert trained is not None and trained["promoted"] is True
    registry = Registry(tmp_path / "models")
    production = registry.production()
    assert production is not None and trained["production"] == production
    state = orjson.loads((tmp_path / "models" / STATE).read_bytes())
    assert state["trained_batch"] == trained["batch"] and state["trainings"] == 1

    assert scheduler.tick() is None  # no batch since: no training
    assert Registry(tmp_path / "models").production() == production

    ingest(world, tmp_path / "log", tmp_path / "store", second)
    retrained = scheduler.tick()
    assert retrained is not None and retrained["batch"] > trained["batch"]
    # Past the gate, the candidate goes to a canary; production has not moved.
    assert retrained["promoted"] is False
    assert retrained["canary"] is not None
    assert Registry(tmp_path / "models").production() == production
    assert running(tmp_path / "models") is not None
    experiment = Experiments(tmp_path / "models").current()
    assert experiment is not None
    assert {arm.version for arm in experiment.arms} == {
        production,
        retrained["canary"]["candidate"],
    }
    last = Registry(tmp_path / "models").releases()[-1]
    assert (last.decision, last.decided_by) == ("canary", "gate")
    assert last.evidence["gate"]["passed"] is True


def test_a_restarted_scheduler_keeps_its_clock(
    halves: tuple[World, list[bytes], list[bytes]], tmp_path: Path
) -> None:
    world, first, second = halves
    ingest(world, tmp_path / "log", tmp_path / "store", first)
    assert Scheduler(command(tmp_path, every=3600.0), lambda *_, **__: None).tick() is not None
    ingest(world, tmp_path / "log", tmp_path / "store", second)
    # A new batch, but the hour since the last training has not passed: a restarted
    # scheduler must not train again at once.
    said: list[dict] = []
    restarted = Scheduler(command(tmp_path, every=3600.0), lambda status, **_: said.append(status))
    assert restarted.tick() is None
    assert said[-1]["why"].startswith("last training") and "every 3600 s" in said[-1]["why"]


def test_too_few_events_wait_for_more(
    halves: tuple[World, list[bytes], list[bytes]], tmp_path: Path
) -> None:
    world, first, _ = halves
    ingest(world, tmp_path / "log", tmp_path / "store", first[:200])
    said: list[dict] = []
    scheduler = Scheduler(command(tmp_path), lambda status, **_: said.append(status))
    assert scheduler.tick() is None
    assert "fewer than --min-events" in said[-1]["why"]
    assert not (tmp_path / "models" / STATE).exists()


def test_a_canary_started_by_someone_else_while_training_keeps_production(
    halves: tuple[World, list[bytes], list[bytes]], tmp_path: Path
) -> None:
    """The scheduler checks for a running canary before it trains, and a training takes a
    while: an operator's canary started meanwhile must not crash it nor be replaced."""
    world, first, second = halves
    ingest(world, tmp_path / "log", tmp_path / "store", first)
    scheduler = Scheduler(command(tmp_path), lambda *_, **__: None)
    first_training = scheduler.tick()
    assert first_training is not None and first_training["promoted"]
    production = Registry(tmp_path / "models").production()
    registered = [v["version"] for v in Registry(tmp_path / "models").read()["versions"]]
    operators = next(v for v in registered if v != production)
    ingest(world, tmp_path / "log", tmp_path / "store", second)
    start_canary(tmp_path / "models", operators, CanaryConfig(), {}, "operator")
    outcome = scheduler._train()  # as if the canary had started while this ran
    assert outcome["promoted"] is False and outcome["canary"]["refused"]
    assert "a canary is already running" in outcome["reason"]
    registry = Registry(tmp_path / "models")
    assert registry.production() == production
    assert running(tmp_path / "models")["candidate"] == operators  # type: ignore[index]
    last = registry.releases()[-1]
    assert (last.decision, last.decided_by) == ("keep", "gate") and last.evidence["passed"]


def test_without_production_a_training_that_promoted_nothing_is_retried_on_new_data(
    halves: tuple[World, list[bytes], list[bytes]], tmp_path: Path
) -> None:
    world, first, _ = halves
    ingest(world, tmp_path / "log", tmp_path / "store", first[:1500])
    scheduler = Scheduler(command(tmp_path, every=3600.0, min_events=100), lambda *_, **__: None)
    too_early = scheduler.tick()
    assert too_early is not None and too_early["production"] is None  # nothing comparable
    ingest(world, tmp_path / "log", tmp_path / "store", first[1500:])
    retried = scheduler.tick()  # within the hour, but every call fails without a model
    assert retried is not None and retried["promoted"] is True
