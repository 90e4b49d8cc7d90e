"""Experiments: which model version answers which users, kept beside the registry.

    MODELS/experiment.json            the running experiment (absent: production answers all)
    MODELS/experiments/<id>.json      every experiment ever started, with its stop time
    MODELS/answers/answers-<hour>.jsonl   the service's answer log (its default place)

Users are split by a salted hash of their id, so a user stays in one arm for the whole
experiment, every replica of the service agrees without talking to the others, and the
online figures can tell a user's arm from the id alone (even for a request the site logged
as a timeout, whose answer we never saw). The salt differs per experiment, so the users of
one experiment's treatment are not the same users in the next, unless an experiment is
started to keep an earlier one's split (`--split-of`: the same arms going on with retrained
versions, as a study of the feedback loop over many days needs).

An arm may set its own exploration slots (serving/explore.py), so two arms of one model
version can compare answers with and without them.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from movierec.models.base import LIST_LENGTH
from movierec.store.events import atomic_write

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,31}$")
_MASK = (1 << 64) - 1
CURRENT = "experiment.json"
HISTORY = "experiments"
ANSWERS = "answers"


def answer_log_dir(models_dir: str | Path) -> Path:
    """Where `movierec serve` keeps its answer log unless told otherwise, so the readers of
    the log (online figures, experiment reports) find it from the registry alone."""
    return Path(models_dir) / ANSWERS


@dataclass(frozen=True)
class Arm:
    name: str
    version: str
    share: float
    # Exploration slots of this arm's answers (movierec/serving/explore.py); None: the
    # service's own setting. Absent from experiments recorded before it existed.
    explore_slots: int | None = None


@dataclass(frozen=True)
class Experiment:
    id: str
    salt: int  # 63 bits, drawn at start
    arms: tuple[Arm, ...]
    started: str  # ISO time, UTC
    # The stated minimal effect worth detecting (relative change of conversion), the error
    # rates the verdict keeps, and a fixed horizon (answers per arm) if one was stated.
    min_effect: float = 0.1
    alpha: float = 0.05
    power: float = 0.8
    horizon: int | None = None
    stopped: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.arms) < 2:
            raise ValueError("an experiment needs at least two arms")
        names = [arm.name for arm in self.arms]
        if len(set(names)) != len(names):
            raise ValueError(f"arm names must differ: {names}")
        for arm in self.arms:
            if not _NAME.match(arm.name):
                raise ValueError(f"arm name {arm.name!r}: a letter, then letters, digits, _ or -")
            if not 0 < arm.share <= 1:
                raise ValueError(f"arm {arm.name}: share {arm.share} is not within (0, 1]")
            slots = arm.explore_slots
            if slots is not None and (type(slots) is not int or not 0 <= slots <= LIST_LENGTH):
                raise ValueError(
                    f"arm {arm.name}: explore_slots {slots!r} is not a whole number "
                    f"within 0..{LIST_LENGTH}"
                )
        total = sum(arm.share for arm in self.arms)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"arm shares add up to {total:g}, not 1")
        if not 0 < self.alpha < 0.5 or not 0.5 <= self.power < 1 or self.min_effect <= 0:
            raise ValueError("need 0 < alpha < 0.5, 0.5 <= power < 1 and min_effect > 0")

    @property
    def bounds(self) -> np.ndarray:
        """Upper bucket bound of each arm (the last is 1)."""
        edges = np.cumsum([arm.share for arm in self.arms])
        edges[-1] = 1.0
        return edges

    def arm_index(self, users: np.ndarray) -> np.ndarray:
        """Each user's arm (index into arms), vectorised."""
        return np.searchsorted(self.bounds, buckets(users, self.salt), side="right")

    def arm_of(self, user: int) -> Arm:
        """One user's arm: the request path's version of arm_index."""
        point = bucket(user, self.salt)
        for arm, edge in zip(self.arms, self.bounds.tolist(), strict=True):
            if point < edge:
                return arm
        return self.arms[-1]

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        # An arm without its own exploration slots is recorded as before they existed.
        data["arms"] = [
            {k: v for k, v in arm.items() if k != "explore_slots" or v is not None}
            for arm in data["arms"]
        ]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Experiment:
        arms = tuple(Arm(**arm) for arm in data["arms"])
        return cls(**{**data, "arms": arms})


def _mix(x: int) -> int:
    """splitmix64's finaliser: every input bit moves every output bit."""
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK
    return x ^ (x >> 31)


def bucket(user: int, salt: int) -> float:
    """A user's point in [0, 1) for this salt."""
    return (_mix((user ^ salt) & _MASK) >> 11) / float(1 << 53)


def buckets(users: np.ndarray, salt: int) -> np.ndarray:
    """bucket() for many users at once; equal to it bit for bit (a test checks)."""
    with np.errstate(over="ignore"):
        x = np.asarray(users, dtype=np.int64).astype(np.uint64) ^ np.uint64(salt & _MASK)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def parse_arm(text: str) -> Arm:
    """`NAME=VERSION:SHARE`, as `movierec experiment start --arm` takes it."""
    name, sep, rest = text.partition("=")
    version, sep2, share = rest.rpartition(":")
    if not sep or not sep2 or not name or not version:
        raise ValueError(f"arm {text!r}: expected NAME=VERSION:SHARE, e.g. control=v3:0.5")
    try:
        value = float(share)
    except ValueError:
        raise ValueError(f"arm {text!r}: share {share!r} is not a number") from None
    return Arm(name, version, value)


def with_exploration(arms: list[Arm], settings: tuple[str, ...] | list[str]) -> list[Arm]:
    """The arms with `NAME=SLOTS` exploration overrides (`experiment start --explore`)."""
    slots: dict[str, int] = {}
    for text in settings:
        name, sep, value = text.partition("=")
        if not sep or not value.strip().isdigit():
            raise ValueError(f"explore {text!r}: expected NAME=SLOTS, e.g. explore=4")
        slots[name.strip()] = int(value)
    unknown = sorted(set(slots) - {arm.name for arm in arms})
    if unknown:
        raise ValueError(f"explore names arms that are not in the experiment: {unknown}")
    return [replace(arm, explore_slots=slots.get(arm.name, arm.explore_slots)) for arm in arms]


class Experiments:
    """The experiments of one registry directory."""

    def __init__(self, models_dir: str | Path) -> None:
        self.root = Path(models_dir)
        self.current_path = self.root / CURRENT
        self.history_dir = self.root / HISTORY

    def current(self) -> Experiment | None:
        if not self.current_path.exists():
            return None
        return Experiment.from_json(json.loads(self.current_path.read_text()))

    def get(self, experiment_id: str) -> Experiment:
        path = self.history_dir / f"{experiment_id}.json"
        if not path.exists():
            raise ValueError(f"no experiment {experiment_id!r} in {self.history_dir}")
        return Experiment.from_json(json.loads(path.read_text()))

    def all(self) -> list[Experiment]:
        if not self.history_dir.exists():
            return []
        paths = self.history_dir.glob("*.json")
        found = [Experiment.from_json(json.loads(p.read_text())) for p in paths]
        return sorted(found, key=lambda e: (e.started, e.id))

    def start(
        self,
        arms: list[Arm],
        known_versions: set[str],
        salt: int | None = None,
        **settings: Any,
    ) -> Experiment:
        """Start an experiment (stopping a running one first). Every arm's version must be
        registered: an arm the service cannot load would silently answer from production.
        A `salt` given (an earlier experiment's) keeps that experiment's split of users, so
        arms that go on with new versions keep their users; by default a new one is drawn."""
        now = datetime.now(UTC)
        while True:  # an id already in the history would overwrite that experiment's record
            experiment_id = now.strftime("exp-%Y%m%dT%H%M%S-") + secrets.token_hex(3)
            if not (self.history_dir / f"{experiment_id}.json").exists():
                break
        experiment = Experiment(
            id=experiment_id,
            salt=secrets.randbits(63) if salt is None else salt,
            arms=tuple(arms),
            started=now.isoformat(timespec="milliseconds"),
            **settings,
        )  # checks the arms' names and shares first: the plainer mistakes
        missing = sorted({arm.version for arm in arms} - known_versions)
        if missing:
            raise ValueError(f"versions not in the registry: {', '.join(missing)}")
        self.stop()
        self._write(experiment)
        atomic_write(self.current_path, json.dumps(experiment.to_json(), indent=2).encode())
        return experiment

    def stop(self) -> Experiment | None:
        running = self.current()
        if running is None:
            return None
        stopped = Experiment.from_json(
            {**running.to_json(), "stopped": datetime.now(UTC).isoformat(timespec="milliseconds")}
        )
        self._write(stopped)
        self.current_path.unlink()
        return stopped

    def _write(self, experiment: Experiment) -> None:
        path = self.history_dir / f"{experiment.id}.json"
        atomic_write(path, json.dumps(experiment.to_json(), indent=2).encode())
