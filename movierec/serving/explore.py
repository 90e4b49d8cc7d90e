"""Exploration slots: k of an answer's 20 positions given to movies outside the head.

A model trained on what users watched, whose lists then shape what they watch, narrows
itself onto the popular head (movierec/online/loop.py measures it). Exploration slots keep
the loop open: the last k positions of an answer are movies from the snapshot's long tail,
so tail movies are shown, some are watched, and the next model learns of them. The first
20 - k positions are the list the answer would have had, in its order.

The tail pool of a snapshot is every item except its head: the `head_share` of its items
its own lists show most (the model's lists of every user it knows, and its popular list),
counting only items shown at all, so a catalogue mostly never shown keeps all of those in
the pool. The pool is computed once per version, off the request path (the loader warms
it for the snapshots it installs).

The k movies are drawn from the pool by a hash of (user, day, version): a user's list is
the same all day long from one snapshot, a new draw tomorrow or under a new model, and
every replica of the service agrees without talking to the others. A drawn movie is never
one the model saw the user interact with, nor one already in the list. Events newer than
the model (the fresh lists' news, serving/freshness.py) are not known here: a tail movie
watched today may be drawn again until the next model.

Exploration happens before the adult filter (serving/safety.py), so a drawn adult movie is
still kept from a restricted user; that user then gets one more item of the list instead.
"""

from __future__ import annotations

import math
import time
import zlib
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from movierec.models.base import LIST_LENGTH

if TYPE_CHECKING:
    from movierec.serving.snapshot import Snapshot

HEAD_SHARE = 0.2  # the most-shown fifth of a model's items is its head
_MASK = (1 << 64) - 1
_DAY_SECONDS = 86_400


def _mix(x: int) -> int:
    """splitmix64's finaliser: every input bit moves every output bit."""
    x &= _MASK
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9 & _MASK
    x = (x ^ (x >> 27)) * 0x94D049BB133111EB & _MASK
    return x ^ (x >> 31)


def draw_key(user: int, day: int, seed: int) -> int:
    """The hash one user's draw of one day starts from, under the pool's `seed`."""
    return _mix(_mix(_mix(seed) ^ (user & _MASK)) ^ (day & _MASK))


def today() -> int:
    """Days since the epoch on the service's clock (UTC)."""
    return int(time.time() // _DAY_SECONDS)


@dataclass(frozen=True)
class TailPool:
    """One snapshot's items outside its head."""

    version: str
    items: tuple[int, ...]  # item indices, ascending
    head: frozenset[int]  # the most-shown items, never drawn
    seed: int  # from the version's name: the same in every process

    @property
    def size(self) -> int:
        return len(self.items)


def shown_counts(n_items: int, lists: Iterable[np.ndarray]) -> np.ndarray:
    """How often each item sits in the first 20 positions of the given ranked arrays
    (each 1-d or 2-d, -1 padded)."""
    counts = np.zeros(n_items, dtype=np.int64)
    for ranked in lists:
        top = np.asarray(ranked)[..., :LIST_LENGTH].ravel()
        top = top[(top >= 0) & (top < n_items)]
        counts += np.bincount(top, minlength=n_items)
    return counts


def tail_pool_of(version: str, counts: np.ndarray, head_share: float = HEAD_SHARE) -> TailPool:
    """The pool from each item's shown count: the head is the ceil(head_share * items)
    most shown (ties by lower index), those shown at all; the pool is every other item."""
    if not 0 <= head_share < 1:
        raise ValueError(f"head_share {head_share} is not within [0, 1)")
    n = len(counts)
    order = np.lexsort((np.arange(n), -counts))  # most shown first
    top = order[: math.ceil(head_share * n)]
    head = frozenset(top[counts[top] > 0].tolist())
    items = tuple(i for i in range(n) if i not in head)
    return TailPool(version, items, head, zlib.crc32(version.encode()))


def tail_pool(snapshot: Snapshot, head_share: float = HEAD_SHARE) -> TailPool:
    """A snapshot's pool, from what its lists and popular list show."""
    counts = shown_counts(len(snapshot.items), [snapshot.lists, snapshot.popular])
    return tail_pool_of(snapshot.version, counts, head_share)


def draw(pool: TailPool, slots: int, excluded: Collection[int], key: int) -> list[int]:
    """Up to `slots` distinct pool items, none in `excluded`, in an order set by `key`:
    `slots` of them whenever the pool holds that many items not excluded."""
    items, n = pool.items, len(pool.items)
    chosen: list[int] = []
    if n == 0 or slots <= 0:
        return chosen
    # Hashed picks find free items at once while most of the pool is free...
    for attempt in range(4 * slots + 8):
        item = items[_mix(key + attempt) % n]
        if item not in excluded and item not in chosen:
            chosen.append(item)
            if len(chosen) == slots:
                return chosen
    # ...and a walk from a hashed start finds whatever is left when little is.
    start = _mix(key ^ 0x9E3779B97F4A7C15) % n
    for step in range(n):
        item = items[(start + step) % n]
        if item not in excluded and item not in chosen:
            chosen.append(item)
            if len(chosen) == slots:
                break
    return chosen


def explore(
    ranked: np.ndarray, pool: TailPool, slots: int, seen: Collection[int], key: int
) -> np.ndarray:
    """`ranked` with its positions 20 - slots .. 19 given to pool items: the first
    20 - slots distinct items of `ranked`, then `slots` pool items neither among them nor
    `seen`, then the rest of `ranked` (spares for the filters after, e.g. the adult
    filter's), no item twice."""
    slots = max(0, min(slots, LIST_LENGTH))
    keep = LIST_LENGTH - slots
    values = ranked.tolist()
    first = values[:keep]
    taken = set(first)
    at = keep
    if len(taken) < keep or -1 in taken:  # rare: padding or repeats among the first
        first, taken, at = [], set(), 0
        while at < len(values) and len(first) < keep:
            item = values[at]
            if item >= 0 and item not in taken:
                taken.add(item)
                first.append(item)
            at += 1
    drawn = draw(pool, slots, taken.union(seen), key)
    taken.update(drawn)
    spares = [i for i in dict.fromkeys(values[at:]) if i >= 0 and i not in taken]
    return np.array(first + drawn + spares, dtype=np.int32)


def seen_items(snapshot: Snapshot, user: int) -> list[int]:
    """Items the model saw the user interact with (Snapshot.history, in one lookup: the
    snapshot's user table is its model's history's)."""
    row = snapshot.row(user)
    if row < 0:
        return []
    history = snapshot.model.history
    return history.indices[int(history.indptr[row]) : int(history.indptr[row + 1])].tolist()


class Exploration:
    """The service's exploration: its slots (0: none; an experiment arm may override
    them), and the tail pool of each answering snapshot.

    The loader computes the pools of the snapshots it installs; a request that meets a
    version not warmed yet computes it then (a dict write the GIL keeps whole)."""

    def __init__(self, slots: int = 0, head_share: float = HEAD_SHARE) -> None:
        if not 0 <= slots <= LIST_LENGTH:
            raise ValueError(f"exploration slots {slots} is not within 0..{LIST_LENGTH}")
        if not 0 <= head_share < 1:
            raise ValueError(f"exploration head share {head_share} is not within [0, 1)")
        self.slots = slots
        self.head_share = head_share
        self._pools: dict[str, TailPool] = {}

    def pool_of(self, snapshot: Snapshot) -> TailPool:
        found = self._pools.get(snapshot.version)
        if found is None:
            found = tail_pool(snapshot, self.head_share)
            self._pools[snapshot.version] = found
        return found

    def keep_only(self, snapshots: Iterable[Snapshot]) -> None:
        """Compute the pools of the snapshots answering now and forget every other's."""
        self._pools = {s.version: self.pool_of(s) for s in snapshots}

    def ranked(
        self, snapshot: Snapshot, user: int, ranked: np.ndarray, slots: int, day: int | None = None
    ) -> np.ndarray:
        """A user's ranked array with `slots` exploration slots, on `day` (default today)."""
        pool = self.pool_of(snapshot)
        seen = seen_items(snapshot, user)
        key = draw_key(user, today() if day is None else day, pool.seed)
        return explore(ranked, pool, slots, seen, key)

    def describe(self) -> dict[str, object]:
        """The setting and the pools as /healthz shows them."""
        return {
            "slots": self.slots,
            "head_share": self.head_share,
            "pools": {v: p.size for v, p in sorted(self._pools.items())},
        }
