"""Sanity checks of a candidate before it may serve, each with its value, its threshold and
whether it passed.

    full_lists      every list the candidate's snapshot would serve (each known user's,
                    the fallback, the demographic segments') holds 20 distinct valid movie
                    ids, none the user already watched; fewer only when the catalogue
                    has fewer movies the user has not watched
    coverage        the share of the catalogue its validation lists reach, at least a floor
                    times production's on the same users
    snapshot_build  the serving snapshot builds, within a time bound

The lists are read as the service serves them (movierec/serving/snapshot.py: `body`
skips -1 padding and takes the first 20), so a list the checks pass is what users get.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from movierec.ids import is_movie_id
from movierec.models.base import LIST_LENGTH
from movierec.serving.snapshot import Snapshot


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None  # None: it could not be measured (and so did not pass)
    threshold: float | None
    passed: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def served(lists: np.ndarray, k: int = LIST_LENGTH) -> np.ndarray:
    """Each row's first k entries that are not -1, in order, -1 padded: what is served."""
    lists = np.asarray(lists).reshape(len(lists), -1)
    valid = lists >= 0
    order = np.argsort(~valid, axis=1, kind="stable")
    packed = np.take_along_axis(lists, order, axis=1)[:, :k]
    return np.where(np.take_along_axis(valid, order, axis=1)[:, :k], packed, -1)


def list_defects(
    snapshot: Snapshot, k: int = LIST_LENGTH, block: int = 100_000
) -> dict[str, np.ndarray]:
    """Per served list (known users' rows, then the fallback, then each segment's), whether
    it is short, repeats a movie, holds an id that is no movie, or one the user watched.
    Known users are read `block` rows at a time, so memory stays bounded at full size."""
    items = [i.decode() for i in snapshot.items]
    valid_item = np.array([is_movie_id(i) for i in items] + [False])
    # Movies compared by id, not column: two columns spelling one id serve it twice.
    codes = np.append(np.unique(np.array(items), return_inverse=True)[1], len(items))
    fallbacks = [snapshot.popular[None, :]]
    if snapshot.segments is not None:
        fallbacks.append(snapshot.segments)
    users = len(snapshot.user_ids)
    parts = [
        _defects(snapshot, valid_item, codes, snapshot.lists[start : start + block], start, k)
        for start in range(0, users, block)
    ]
    parts.append(_defects(snapshot, valid_item, codes, np.concatenate(fallbacks), None, k))
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[-1]}


def _defects(
    snapshot: Snapshot,
    valid_item: np.ndarray,
    codes: np.ndarray,
    lists: np.ndarray,
    first_row: int | None,
    k: int,
) -> dict[str, np.ndarray]:
    """Defects of consecutive known users' lists from `first_row`, or of lists nobody
    watched anything for (None: the fallbacks)."""
    n_items = len(snapshot.items)
    lists = served(np.asarray(lists, dtype=np.int64), k)
    present = lists >= 0
    beyond = present & (lists >= n_items)  # an index past the items: as bad as a bad id
    index = np.where(present & ~beyond, lists, n_items)  # n_items: the "no movie" slot
    invalid = (present & ~valid_item[index]).any(axis=1)
    code = codes[index]
    ordered = np.sort(np.where(index < n_items, code, -1 - np.arange(k)), axis=1)
    repeated = (np.diff(ordered, axis=1) == 0).any(axis=1)
    watched = np.zeros(len(lists), dtype=bool)
    watched_count = np.zeros(len(lists), dtype=np.int64)
    if first_row is not None:
        history = snapshot.model.history
        rows = np.arange(first_row, first_row + len(lists), dtype=np.int64)
        watched_count = history.lengths(rows)
        owner, item = history.seen(rows)
        seen = np.unique(owner * (n_items + 1) + codes[item])
        if len(seen):
            keys = np.arange(len(lists), dtype=np.int64)[:, None] * (n_items + 1) + code
            at = np.minimum(np.searchsorted(seen, keys), len(seen) - 1)
            watched = ((seen[at] == keys) & present).any(axis=1)
    short = present.sum(axis=1) < np.minimum(k, np.maximum(n_items - watched_count, 0))
    return {"short": short, "repeated": repeated, "invalid": invalid, "watched": watched}


def full_lists(snapshot: Snapshot) -> Check:
    defects = list_defects(snapshot)
    bad = np.logical_or.reduce(list(defects.values()))
    total = len(bad)
    counts = {name: int(flags.sum()) for name, flags in defects.items()}
    examples = [
        int(snapshot.user_ids[i]) if i < len(snapshot.user_ids) else "fallback"
        for i in np.flatnonzero(bad)[:3].tolist()
    ]
    detail = (
        f"{int(bad.sum())} of {total} served lists are not full lists of {LIST_LENGTH} "
        f"distinct valid unwatched movie ids ({', '.join(f'{n} {v}' for n, v in counts.items())})"
    )
    if examples:
        detail += f"; first: {', '.join(map(str, examples))}"
    return Check("full_lists", float(bad.sum()), 0.0, not bad.any(), detail)


def coverage(candidate: float, production: float, floor: float) -> Check:
    """The candidate's catalogue coverage against `floor` x production's (same users)."""
    if not (math.isfinite(candidate) and math.isfinite(production)):
        return Check("coverage", None, None, False, "coverage could not be measured")
    threshold = floor * production
    return Check(
        "coverage",
        round(candidate, 6),
        round(threshold, 6),
        candidate >= threshold,
        f"the validation lists reach {candidate:.1%} of the catalogue, production's "
        f"{production:.1%} (the floor: {floor:g} x production's)",
    )


def snapshot_build(seconds: float, bound: float, error: str | None) -> Check:
    if error is not None:
        return Check("snapshot_build", round(seconds, 3), bound, False, f"build failed: {error}")
    return Check(
        "snapshot_build",
        round(seconds, 3),
        bound,
        seconds <= bound,
        f"the serving snapshot built in {seconds:.2f} s (the bound: {bound:g} s)",
    )


def answer_delay(delay_ms: float, bound_ms: float) -> Check:
    """A model that declares a wait before each answer (the slow kind) is held to a bound
    here, before a canary would find it out on live traffic."""
    return Check(
        "answer_delay",
        round(delay_ms, 3),
        bound_ms,
        delay_ms <= bound_ms,
        f"each answer waits {delay_ms:g} ms before it is sent (the bound: {bound_ms:g} ms)",
    )
