"""Cutting a loaded model down to the users of one shard (`movierec serve --shard I/N`).

After the snapshot's lists are computed, what the service still reads of a model per user
is its training history (exclusion, exploration, fresh lists) and, for some kinds, a
per-user array (a factor model's user factors, the cold-start model's resolved segment).
A sharded snapshot keeps those rows for its own users only, copied out of the model's
memory-mapped files, so the full arrays are unmapped and a shard's memory falls with its
share of the users. Everything per item (factors, similarities, popularity, segment
rankings) stays whole: every shard answers strangers from it."""

from __future__ import annotations

from typing import Any

import numpy as np

from movierec.models.base import Recommender
from movierec.models.history import History

# Attributes of the model kinds that hold one row per training user (movierec/models/).
PER_USER_ARRAYS = ("user_factors", "user_segment")


def shard_history(history: History, rows: np.ndarray) -> History:
    """The history of training rows `rows` (ascending) alone, as new in-memory arrays."""
    rows = np.asarray(rows, dtype=np.int64)
    _, where = history.positions(rows)
    indptr = np.zeros(len(rows) + 1, dtype=np.asarray(history.indptr).dtype)
    np.cumsum(history.lengths(rows), out=indptr[1:])
    values = None if history.values is None else np.asarray(history.values[where])
    return History(
        np.asarray(history.user_ids[rows], dtype=np.int64),
        history.item_ids,
        indptr,
        np.asarray(history.indices[where]),
        values,
    )


def keep_rows(model: Recommender, rows: np.ndarray) -> None:
    """Cut `model` (loaded for this snapshot alone) down to training rows `rows`, in place:
    its history and every per-user array, in it and in the models it holds (a fallback
    shares its history). Raises if an array of one row per user is left whole: a model
    kind whose per-user state this module does not know must not serve a shard."""
    old = model.history
    new = shard_history(old, rows)
    _cut(model, old, new, np.asarray(rows, dtype=np.int64), set())


def _cut(holder: Any, old: History, new: History, rows: np.ndarray, done: set[int]) -> None:
    if id(holder) in done:
        return
    done.add(id(holder))
    for name, value in list(vars(holder).items()):
        if value is old:
            setattr(holder, name, new)
        elif name in PER_USER_ARRAYS and isinstance(value, np.ndarray):
            if len(value) != old.n_users:
                raise ValueError(f"{name} has {len(value)} rows for {old.n_users} users")
            setattr(holder, name, np.ascontiguousarray(value[rows]))
        elif isinstance(value, Recommender):
            _cut(value, old, new, rows, done)
        elif (
            isinstance(value, np.ndarray)
            and value.ndim >= 1
            and len(value) == old.n_users != old.n_items
        ):
            raise ValueError(
                f"{type(holder).__name__}.{name} looks like one row per user but is not "
                f"among {PER_USER_ARRAYS}: this model kind cannot serve a shard"
            )
