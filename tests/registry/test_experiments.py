"""Experiments beside the registry: the split by salted hash, the arms' rules, and the
running experiment with its history."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec.registry.experiments import (
    Arm,
    Experiment,
    Experiments,
    answer_log_dir,
    bucket,
    buckets,
    parse_arm,
)

users = st.lists(st.integers(min_value=0, max_value=2**62), min_size=1, max_size=50)
salts = st.integers(min_value=0, max_value=2**63 - 1)


def experiment(*shares: float, salt: int = 12345) -> Experiment:
    arms = tuple(Arm(f"arm{i}", f"v{i}", share) for i, share in enumerate(shares))
    return Experiment(id="exp-test", salt=salt, arms=arms, started="2027-01-01T00:00:00+00:00")


@given(users, salts)
def test_the_vectorised_bucket_equals_the_scalar_one_bit_for_bit(ids: list[int], salt: int) -> None:
    many = buckets(np.array(ids, dtype=np.int64), salt)
    assert many.tolist() == [bucket(user, salt) for user in ids]
    assert all(0.0 <= point < 1.0 for point in many.tolist())


@given(users, salts, st.lists(st.floats(min_value=0.05, max_value=1.0), min_size=2, max_size=4))
def test_arm_of_and_arm_index_agree(ids: list[int], salt: int, weights: list[float]) -> None:
    shares = [w / sum(weights) for w in weights]
    shares[-1] = 1.0 - sum(shares[:-1])  # exact total, as a person would type it
    exp = experiment(*shares, salt=salt)
    index = exp.arm_index(np.array(ids, dtype=np.int64)).tolist()
    assert [exp.arms[i] for i in index] == [exp.arm_of(user) for user in ids]


def test_shares_hold_for_many_users_and_a_new_salt_reshuffles_them() -> None:
    ids = np.arange(1, 200_001, dtype=np.int64)
    first = experiment(0.1, 0.3, 0.6, salt=1).arm_index(ids)
    counts = np.bincount(first, minlength=3) / len(ids)
    # Binomial standard error at n=200k is at most 0.0011: five of them either way.
    assert np.allclose(counts, [0.1, 0.3, 0.6], atol=0.0056)
    second = experiment(0.1, 0.3, 0.6, salt=2).arm_index(ids)
    # Independent salts: the first arm's users land in the first arm again at its share.
    again = np.mean(second[first == 0] == 0)
    assert abs(again - 0.1) < 0.02
    # Consecutive ids do not cluster: each block of 1,000 users sees every arm.
    assert all(len(set(block.tolist())) == 3 for block in first.reshape(-1, 1000))


def test_a_user_keeps_their_arm() -> None:
    exp = experiment(0.5, 0.5)
    again = Experiment.from_json(json.loads(json.dumps(exp.to_json())))
    assert again == exp
    assert [again.arm_of(u) for u in range(1, 500)] == [exp.arm_of(u) for u in range(1, 500)]


@pytest.mark.parametrize(
    ("shares", "names", "message"),
    [
        ((1.0,), ("a",), "at least two arms"),
        ((0.5, 0.5), ("a", "a"), "must differ"),
        ((0.5, 0.4), ("a", "b"), "add up to 0.9"),
        ((0.0, 1.0), ("a", "b"), "not within"),
        ((0.5, 0.5), ("a", "1b"), "a letter, then"),
        ((0.5, 0.5), ("a", "b c"), "a letter, then"),
    ],
)
def test_arms_that_cannot_split_users_are_refused(
    shares: tuple[float, ...], names: tuple[str, ...], message: str
) -> None:
    arms = tuple(Arm(n, "v1", s) for n, s in zip(names, shares, strict=True))
    with pytest.raises(ValueError, match=message):
        Experiment(id="e", salt=1, arms=arms, started="2027-01-01T00:00:00+00:00")


@pytest.mark.parametrize(
    ("settings", "valid"),
    [({"alpha": 0.5}, False), ({"power": 1.0}, False), ({"min_effect": 0.0}, False),
     ({"alpha": 0.01, "power": 0.9, "min_effect": 0.05}, True)],
)  # fmt: skip
def test_error_rates_and_the_minimal_effect_are_checked(
    settings: dict[str, float], valid: bool
) -> None:
    arms = (Arm("a", "v1", 0.5), Arm("b", "v2", 0.5))
    if valid:
        Experiment(id="e", salt=1, arms=arms, started="t", **settings)  # type: ignore[arg-type]
    else:
        with pytest.raises(ValueError, match="alpha"):
            Experiment(id="e", salt=1, arms=arms, started="t", **settings)  # type: ignore[arg-type]


def test_parse_arm_reads_name_version_and_share() -> None:
    assert parse_arm("control=als-20270101T000000-ab12:0.25") == Arm(
        "control", "als-20270101T000000-ab12", 0.25
    )
    malformed = [("control", "NAME=VERSION:SHARE"), ("c=v1", "NAME=VERSION:SHARE"),
                 ("=v1:0.5", "NAME=VERSION:SHARE"), ("c=v1:half", "not a number")]  # fmt: skip
    for text, message in malformed:
        with pytest.raises(ValueError, match=message):
            parse_arm(text)


def test_start_stop_and_history(tmp_path: Path) -> None:
    experiments = Experiments(tmp_path)
    assert experiments.current() is None and experiments.stop() is None
    arms = [Arm("control", "v1", 0.5), Arm("candidate", "v2", 0.5)]
    with pytest.raises(ValueError, match="not in the registry: v2"):
        experiments.start(arms, known_versions={"v1"})
    assert experiments.current() is None  # nothing half-started

    first = experiments.start(arms, known_versions={"v1", "v2"}, min_effect=0.2)
    assert experiments.current() == first and first.min_effect == 0.2
    second = experiments.start(arms, known_versions={"v1", "v2"})
    assert second.id != first.id and second.salt != first.salt
    assert experiments.current() == second
    # Starting the second stopped the first, and the history keeps both.
    assert experiments.get(first.id).stopped is not None
    history = experiments.all()
    assert {e.id for e in history} == {first.id, second.id}
    assert history[0].started <= history[1].started

    stopped = experiments.stop()
    assert stopped is not None and stopped.id == second.id and stopped.stopped
    assert experiments.current() is None
    assert experiments.get(second.id).stopped == stopped.stopped
    with pytest.raises(ValueError, match="no experiment 'nope'"):
        experiments.get("nope")


def test_the_answer_log_lives_beside_the_registry(tmp_path: Path) -> None:
    assert answer_log_dir(tmp_path / "models") == tmp_path / "models" / "answers"
