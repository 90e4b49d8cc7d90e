"""An arm's own exploration slots: optional, so experiments recorded before them read as
they were and are written back unchanged; checked; set by `NAME=SLOTS`; and an experiment
may keep an earlier one's split of users."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from movierec.registry.experiments import Arm, Experiment, Experiments, with_exploration

# An experiment as recorded before arms had exploration slots.
RECORDED = {
    "id": "exp-20270101T000000-abcdef",
    "salt": 987654321,
    "arms": [
        {"name": "control", "version": "v1", "share": 0.5},
        {"name": "treatment", "version": "v2", "share": 0.5},
    ],
    "started": "2027-01-01T00:00:00.000+00:00",
    "min_effect": 0.1,
    "alpha": 0.05,
    "power": 0.8,
    "horizon": None,
    "stopped": None,
    "notes": {},
}


def test_an_experiment_recorded_before_the_field_reads_and_writes_back_unchanged(
    tmp_path: Path,
) -> None:
    experiment = Experiment.from_json(json.loads(json.dumps(RECORDED)))
    assert [arm.explore_slots for arm in experiment.arms] == [None, None]
    assert experiment.to_json() == RECORDED
    (tmp_path / "experiment.json").write_text(json.dumps(RECORDED))
    assert Experiments(tmp_path).current() == experiment


def test_an_arms_slots_are_recorded_and_read_back() -> None:
    arms = (Arm("plain", "v1", 0.5), Arm("explore", "v1", 0.5, explore_slots=4))
    experiment = Experiment("exp-x", 7, arms, "2027-01-01T00:00:00+00:00")
    recorded = experiment.to_json()
    assert recorded["arms"][0] == {"name": "plain", "version": "v1", "share": 0.5}
    assert recorded["arms"][1]["explore_slots"] == 4
    assert Experiment.from_json(json.loads(json.dumps(recorded))) == experiment


@pytest.mark.parametrize("slots", [-1, 21, 2.5, True, "4"])
def test_slots_outside_the_list_are_refused(slots: object) -> None:
    arms = (Arm("a", "v1", 0.5), Arm("b", "v1", 0.5, explore_slots=slots))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="arm b: explore_slots"):
        Experiment("exp-x", 7, arms, "t")


def test_name_equals_slots_sets_one_arm_and_names_the_mistakes() -> None:
    arms = [Arm("a", "v1", 0.5), Arm("b", "v1", 0.5)]
    assert with_exploration(arms, ["b=3"]) == [Arm("a", "v1", 0.5), Arm("b", "v1", 0.5, 3)]
    assert with_exploration(arms, []) == arms
    with pytest.raises(ValueError, match="not in the experiment"):
        with_exploration(arms, ["c=3"])
    for bad in ("b", "b=", "b=x", "b=-1"):
        with pytest.raises(ValueError, match="expected NAME=SLOTS"):
            with_exploration(arms, [bad])


def test_a_new_experiment_can_keep_an_earlier_ones_split(tmp_path: Path) -> None:
    experiments = Experiments(tmp_path)
    arms = [Arm("a", "v1", 0.5), Arm("b", "v2", 0.5)]
    first = experiments.start(arms, {"v1", "v2", "v3"})
    kept = experiments.start([Arm("a", "v3", 0.5), Arm("b", "v3", 0.5)], {"v3"}, salt=first.salt)
    fresh = experiments.start(arms, {"v1", "v2"})
    users = np.arange(1, 5001)
    assert kept.id != first.id and kept.salt == first.salt
    assert (kept.arm_index(users) == first.arm_index(users)).all()
    assert fresh.salt != first.salt  # by default a new split (2^-63 to collide)
    assert (fresh.arm_index(users) != first.arm_index(users)).any()
