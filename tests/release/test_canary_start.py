"""Starting and ending a canary on hand-made registries: what start_canary refuses (and
that a refusal changes nothing), what it writes, how a step reports an experiment stopped
or a production moved by someone else, and the two commands, `movierec release --canary`
and `movierec canary`, on a hand-made store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from movierec.models.popularity import PopularityRecommender
from movierec.registry.experiments import Arm, Experiments
from movierec.registry.versions import Registry
from movierec.release.canary import running, start_canary, state_path, step
from movierec.release.canary_rules import CanaryConfig
from tests.models.contract import planted_data
from tests.support.commands import movierec
from tests.support.online import Answer, OnlineWorld, Request
from tests.support.serving import HandMadeModels, hand_made_models

SEC = 10**9
T0 = 1_760_000_000 * SEC


@pytest.fixture
def models(tmp_path: Path) -> HandMadeModels:
    return hand_made_models(tmp_path / "models", planted_data())


def candidate_of(models: HandMadeModels) -> str:
    return models.add(PopularityRecommender())


def snapshot_of(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*.json")}


def test_a_canary_starts_beside_production(models: HandMadeModels) -> None:
    candidate = candidate_of(models)
    root = models.registry.root
    experiment = start_canary(root, candidate, CanaryConfig(share=0.25), {"gate": "passed"})
    assert experiment.arms == (
        Arm("control", models.version, 0.75),
        Arm("canary", candidate, 0.25),
    )
    assert Experiments(root).current() == experiment
    state = running(root)
    assert state is not None and state["experiment"] == experiment.id
    assert (state["candidate"], state["production"]) == (candidate, models.version)
    assert state["config"]["share"] == 0.25
    record = models.registry.releases()[-1]
    assert record.decision == "canary" and record.decided_by == "operator"
    assert record.from_version == record.to_version == models.version
    assert record.evidence == {
        "candidate": candidate, "experiment": experiment.id, "share": 0.25, "gate": "passed"
    }  # fmt: skip
    assert models.registry.production() == models.version


def test_what_start_refuses_changes_nothing(models: HandMadeModels, tmp_path: Path) -> None:
    root = models.registry.root
    candidate = candidate_of(models)
    broken = candidate_of(models)
    shutil.rmtree(models.registry.model_dir(broken))
    before = snapshot_of(root)
    refusals = {
        models.version: "already production",
        "20270101T000000Z-als-000000": "unknown version",
        broken: "unknown version",
    }
    for version, said in refusals.items():
        with pytest.raises(ValueError, match=said):
            start_canary(root, version, CanaryConfig())
    assert snapshot_of(root) == before
    Experiments(root).start(
        [Arm("a", models.version, 0.5), Arm("b", candidate, 0.5)], {models.version, candidate}
    )
    before = snapshot_of(root)
    with pytest.raises(ValueError, match="is running: stop it first"):
        start_canary(root, candidate, CanaryConfig())
    assert snapshot_of(root) == before
    Experiments(root).stop()
    start_canary(root, candidate, CanaryConfig())
    before = snapshot_of(root)
    with pytest.raises(ValueError, match="a canary is already running"):
        start_canary(root, candidate, CanaryConfig())
    assert snapshot_of(root) == before
    empty = Registry(tmp_path / "empty")
    data = planted_data()
    version = empty.add(PopularityRecommender().fit(data), {"data": {"to": None}})
    with pytest.raises(ValueError, match="no production version"):
        start_canary(empty.root, version, CanaryConfig())


def test_no_canary_no_decision(models: HandMadeModels, tmp_path: Path) -> None:
    decision = step(tmp_path / "no-store", models.registry.root)
    assert (decision.decision, decision.reasons) == ("none", ["no canary is running"])


def test_an_experiment_stopped_by_someone_else_is_said_so(models: HandMadeModels) -> None:
    root = models.registry.root
    candidate = candidate_of(models)
    experiment = start_canary(root, candidate, CanaryConfig())
    Experiments(root).stop()  # an operator's `movierec experiment stop`
    decision = step(root / "no-store", root)
    assert decision.decision == "abort"
    assert f"experiment {experiment.id} was stopped by someone else" in decision.reasons[0]
    record = models.registry.releases()[-1]
    assert (record.decision, record.decided_by) == ("abort", "canary")
    assert record.evidence["candidate"] == candidate and not state_path(root).exists()
    assert models.registry.production() == models.version


def test_a_production_moved_meanwhile_is_said_so(models: HandMadeModels) -> None:
    root = models.registry.root
    candidate, other = candidate_of(models), candidate_of(models)
    start_canary(root, candidate, CanaryConfig())
    models.registry.promote(other, "by hand", decided_by="operator")
    decision = step(root / "no-store", root)
    assert decision.decision == "abort"
    assert f"production moved from {models.version} to {other}" in decision.reasons[0]
    assert Experiments(root).current() is None and running(root) is None
    assert models.registry.production() == other


def test_the_commands_start_and_step_a_canary(tmp_path: Path) -> None:
    world = OnlineWorld(tmp_path)
    models = hand_made_models(world.models, planted_data())
    candidate = candidate_of(models)
    models_dir = str(world.models)
    started = movierec(
        "release", "--models", models_dir, "--canary", candidate, "--share", "0.5",
        "--reason", "gate passed",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    shown = json.loads(started.stdout)
    assert (shown["action"], shown["decision"], shown["decided_by"]) == (
        "canary", "canary", "operator"
    )  # fmt: skip
    assert shown["evidence"]["reason"] == "gate passed"
    again = movierec("release", "--models", models_dir, "--canary", candidate)
    assert again.returncode == 2 and "a canary is already running" in again.stderr
    experiment = Experiments(world.models).current()
    assert experiment is not None
    # Ten answered requests: each user's arm as the service would split them.
    requests, answers = [], []
    for user in range(1, 11):
        arm = experiment.arm_of(user)
        items = (f"movie+{user}+2001",)
        requests.append(Request(T0 + user * SEC, user, items=items))
        answers.append(Answer(user, arm.version, items, experiment.id, arm.name))
    world.batch(requests=requests, answers=answers)
    stepped = movierec("canary", "--models", models_dir, "--store", str(world.root / "store"))
    assert stepped.returncode == 0, stepped.stderr
    decision = json.loads(stepped.stdout)
    assert decision["decision"] == "wait" and decision["candidate"] == candidate
    arms = decision["evidence"]["arms"]
    expected = sum(experiment.arm_of(u).name == "canary" for u in range(1, 11))
    assert arms["canary"]["requests"] == expected
    assert arms["control"]["requests"] == 10 - expected
    assert decision["evidence"]["config"]["share"] == 0.5  # the settings it started with
    missing = movierec("canary", "--models", models_dir, "--store", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "no event store" in missing.stderr
    no_registry = movierec("canary", "--models", str(tmp_path / "x"), "--store", models_dir)
    assert no_registry.returncode == 2 and "no registry" in no_registry.stderr


def test_hold_records_only_decisions_that_leave_production(models: HandMadeModels) -> None:
    candidate = candidate_of(models)
    with pytest.raises(ValueError, match="canary or an abort"):
        models.registry.hold("promote", candidate, "would move the pointer")
    record = models.registry.abort(candidate, "too slow", {"p99": 640})
    assert (record.decision, record.decided_by) == ("abort", "canary")
    assert record.from_version == record.to_version == models.version
    assert record.evidence == {"candidate": candidate, "p99": 640}
    assert models.registry.releases()[-1] == record
