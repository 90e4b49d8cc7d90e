"""What the service answers from: one model version's lists, precomputed for every user the
model knows, and fallbacks for everyone else. Immutable once built, so swapping models is
one reference assignment and a request never sees half of two versions."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from movierec.ids import index_in_sorted, is_movie_id
from movierec.models.base import LIST_LENGTH, Recommender
from movierec.models.kinds import load_model
from movierec.registry.versions import Registry
from movierec.serving.shard import Shard
from movierec.serving.sharding import keep_rows
from movierec.vocab import AGE_GROUPS, OCCUPATIONS

DEPTH = 40  # items kept per user: spares for when fresh watches knock some out
_BLOCK = 20_000  # users scored at once while building


@dataclass(frozen=True)
class Demographics:
    """What the catalogue knows of users, as sorted arrays (-1 where unknown)."""

    user_ids: np.ndarray = field(default_factory=lambda: np.empty(0, np.int64))
    age: np.ndarray = field(default_factory=lambda: np.empty(0, np.int16))
    gender: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8))
    occupation: np.ndarray = field(default_factory=lambda: np.empty(0, np.int8))

    def segment(self, user_id: int) -> int | None:
        """Index into Snapshot.segments of a user's demographic segment, None if unknown."""
        at = index_in_sorted(self.user_ids, user_id)
        if at < 0:
            return None
        return segment_index(int(self.age[at]), int(self.gender[at]), int(self.occupation[at]))

    def age_of(self, user_id: int) -> int:
        """A user's age as the catalogue says, -1 if unknown (or not catalogued)."""
        at = index_in_sorted(self.user_ids, user_id)
        return int(self.age[at]) if at >= 0 else -1


_AGE_EDGES = np.array([high for _, high, _ in AGE_GROUPS])
_AGES = [low if low > 0 else 12 for low, _, _ in AGE_GROUPS]  # one age in each group


def segment_index(age: int, gender: int, occupation: int) -> int:
    group = int(np.searchsorted(_AGE_EDGES, age)) if age >= 0 else len(AGE_GROUPS)
    g = gender if gender in (0, 1) else 2
    o = occupation if 0 <= occupation < len(OCCUPATIONS) else len(OCCUPATIONS)
    return (group * 3 + g) * (len(OCCUPATIONS) + 1) + o


@dataclass(frozen=True)
class Snapshot:
    version: str
    model: Recommender
    items: list[bytes]  # movie ids as the response spells them
    user_ids: np.ndarray  # sorted: users the model knows
    lists: np.ndarray  # int32 (users, DEPTH), -1 padded
    popular: np.ndarray  # the fallback for users nobody knows anything about
    segments: np.ndarray | None  # int32 (segments, DEPTH) from the cold-start model
    data_end_ns: int  # events after this are news to the model
    built_seconds: float
    # Seconds the service waits before each answer: what the model declares (only the
    # deliberately slow kind, movierec/models/slow.py, declares any); 0 answers at once.
    answer_delay: float = 0.0
    # The users this snapshot holds: shard `shard` of the model's `model_users` (0/1: all).
    shard: Shard = field(default_factory=Shard)
    model_users: int = -1

    def row(self, user_id: int) -> int:
        return index_in_sorted(self.user_ids, user_id)

    def body(self, ranked: np.ndarray, skip: frozenset[int] | set[int] = frozenset()) -> bytes:
        """The response: up to 20 ids, best first, none of `skip`."""
        items = self.items
        chosen = [items[i] for i in ranked.tolist() if i >= 0 and i not in skip]
        return b",".join(chosen[:LIST_LENGTH])

    def history(self, user_id: int) -> np.ndarray:
        """Items the model saw the user interact with."""
        row = self.model.history.rows(np.array([user_id]))
        return self.model.history.seen(row)[1] if row[0] >= 0 else np.empty(0, np.int64)


def build(
    registry: Registry,
    version: str,
    coldstart_version: str | None,
    threads: int = 1,
    shard: Shard | None = None,
) -> Snapshot:
    """Load a version and precompute its lists; raises if the artifact is unusable. A
    `shard` keeps its own users alone (lists and the model's per-user state)."""
    shard = shard or Shard()
    started = time.monotonic()
    model = load_model(registry.model_dir(version))
    provenance = registry.provenance(version)
    items = [str(i) for i in model.item_ids]
    bad = [i for i in items[:1000] if not is_movie_id(i)]
    if bad:
        raise ValueError(f"artifact {version} has item ids that are not movie ids: {bad[:3]}")
    if hasattr(model.params, "num_threads"):  # leave the other cores to requests
        model.params = type(model.params)(**{**model.params.to_dict(), "num_threads": threads})
    user_ids = np.asarray(model.history.user_ids, dtype=np.int64)
    if len(user_ids) > 1 and not (np.diff(user_ids) > 0).all():
        raise ValueError(f"artifact {version}: user ids are not sorted")
    model_users = len(user_ids)
    mine = np.flatnonzero(shard.owned(user_ids))
    if not shard.whole:
        user_ids = user_ids[mine]
    lists = np.empty((len(user_ids), DEPTH), dtype=np.int32)
    for start in range(0, len(user_ids), _BLOCK):
        block = model.recommend(user_ids[start : start + _BLOCK], DEPTH)
        lists[start : start + len(block)] = block
    if lists.size and lists.max() >= len(items):
        raise ValueError(f"artifact {version} recommends items it does not have")
    popular = model.recommend(np.array([-1]), DEPTH)[0].astype(np.int32)
    segments = _segments(registry, coldstart_version, items) if coldstart_version else None
    if not shard.whole:  # after the lists: they were computed from the whole model
        keep_rows(model, mine)
    end = datetime.fromisoformat(provenance["data"]["to"]).timestamp()
    return Snapshot(
        version=version,
        model=model,
        items=[i.encode() for i in items],
        user_ids=user_ids,
        lists=lists,
        popular=popular,
        segments=segments,
        data_end_ns=int(end * 1e9) if math.isfinite(end) else 0,
        built_seconds=round(time.monotonic() - started, 3),
        answer_delay=float(getattr(model, "answer_delay", 0.0)),
        shard=shard,
        model_users=model_users,
    )


def _segments(registry: Registry, version: str, items: list[str]) -> np.ndarray | None:
    """Lists of every demographic segment from the cold-start model, mapped onto the
    serving model's items (a movie it does not know is left out)."""
    model = load_model(registry.model_dir(version))
    profiles = profile_table()
    ranked = model.recommend_for_profiles(*profiles, DEPTH)  # type: ignore[attr-defined]
    position = {item: i for i, item in enumerate(items)}
    names = [str(i) for i in model.item_ids]
    mapped = np.full(ranked.shape, -1, dtype=np.int32)
    for r, row in enumerate(ranked):
        kept = [position[names[i]] for i in row.tolist() if i >= 0 and names[i] in position]
        mapped[r, : len(kept)] = kept
    return mapped


def profile_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(age, gender, occupation) of every segment, in segment_index order."""
    ages = [*_AGES, -1]
    rows = [(a, g, o) for a in ages for g in (0, 1, -1) for o in [*range(len(OCCUPATIONS)), -1]]
    age, gender, occupation = (np.array(col, dtype=np.int64) for col in zip(*rows, strict=True))
    return age, gender, occupation


def describe(snapshot: Snapshot) -> dict[str, object]:
    return {
        "version": snapshot.version,
        "users": len(snapshot.user_ids),
        "items": len(snapshot.items),
        "built_seconds": snapshot.built_seconds,
        "segments": snapshot.segments is not None,
        "answer_delay": snapshot.answer_delay,
    }
