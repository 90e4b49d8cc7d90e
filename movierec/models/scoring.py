"""Turning scores into lists, for many users at once.

Models score a block of users against every item as a dense float32 array (block x items),
mark the users' training items with -inf and keep the best k with `np.argpartition`, which
is linear in the number of items rather than a full sort. Blocks bound the memory (a block
of 512 users x 27k items is 55 MB) and run on a small thread pool: BLAS and argpartition
release the GIL, so two cores really work in parallel.

BLAS itself runs on one thread meanwhile. Our blocks already keep the cores busy, and a
multi-threaded BLAS on a shared machine waits for its second thread to be scheduled: one
user's 1 x 64 x 27k product took 2-8 ms on two threads against 0.1 ms on one, and a block
of 512 users 40 ms against 25 ms, measured while other processes ran on the same cores.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

# Target size of one dense score block; per thread, so the peak is threads x this.
BLOCK_BYTES = 64 * 2**20


def thread_count(requested: int) -> int:
    """0 means every core this process may run on."""
    if requested > 0:
        return requested
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def block_rows(n_columns: int, bytes_per_value: int = 4) -> int:
    return max(1, BLOCK_BYTES // max(1, n_columns * bytes_per_value))


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 0:
        raise ValueError(f"k must be a non-negative integer, got {k!r}")
    return int(k)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Columns of the k largest scores of each row, best first, equal scores by lower
    column; -inf (excluded items) never counts, and missing places are -1.

    Overwrites nothing; `scores` must not contain NaN."""
    n_rows, n_columns = scores.shape
    out = np.full((n_rows, k), -1, dtype=np.int64)
    kept = min(k, n_columns)
    if kept == 0 or n_rows == 0:
        return out
    if kept < n_columns:
        # The largest `kept` end up in the last `kept` places; no negated copy needed.
        picked = np.argpartition(scores, n_columns - kept, axis=1)[:, n_columns - kept :]
    else:
        picked = np.broadcast_to(np.arange(n_columns), (n_rows, n_columns)).copy()
    values = np.take_along_axis(scores, picked, axis=1)
    order = np.lexsort((picked, -values), axis=-1)
    picked = np.take_along_axis(picked, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    picked[values == -np.inf] = -1
    out[:, :kept] = picked
    return out


def check_items(items: np.ndarray, n_items: int) -> np.ndarray:
    """Item indices from a caller, as int64; out of range is an error, not a wrap-around."""
    items = np.asarray(items, dtype=np.int64).reshape(-1)
    if len(items) and (items.min() < 0 or items.max() >= n_items):
        raise ValueError(f"item index out of range [0, {n_items})")
    return items


def exclude(scores: np.ndarray, owner: np.ndarray, items: np.ndarray) -> None:
    """Mark (row, item) pairs as never recommendable."""
    scores[owner, items] = -np.inf


def rank_prior(order: np.ndarray) -> np.ndarray:
    """A float32 score per item in (-1, 0), strictly decreasing along `order`.

    Models whose scores are zero for most items (item-kNN: items linked to nothing the user
    watched) put it in place of those zeros, so that the list continues with the fallback
    ranking instead of arbitrary ties, and stays full. Distinct and exact in float32 for
    fewer than 2**24 items."""
    n = len(order)
    prior = np.empty(n, dtype=np.float32)
    prior[order] = -(np.arange(n, dtype=np.float64) + 1.0) / (n + 1.0)
    return prior


def unseen_in_order(
    order: np.ndarray, owner: np.ndarray, items: np.ndarray, n_rows: int, k: int
) -> np.ndarray:
    """For each of n_rows users, the first k items of one global ranking `order` that the
    user has not seen ((owner, items) pairs, one per seen item), -1 padded.

    With the user's seen ranks sorted as s_0 < s_1 < ..., the j-th unseen rank is j plus
    the number of i with s_i - i <= j; a single searchsorted over all users at once answers
    that, so the cost is in the seen items, not users x catalogue."""
    n = len(order)
    if n == 0 or k == 0:
        return np.full((n_rows, k), -1, dtype=np.int64)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    width = n + k + 1  # keeps the keys of different users apart
    keys = np.sort(owner.astype(np.int64) * width + rank[items])
    lengths = np.bincount(owner, minlength=n_rows)
    starts = (np.cumsum(lengths) - lengths).astype(np.int64)
    position_in_row = np.arange(len(keys)) - np.repeat(starts, lengths)
    shifted = keys - position_in_row  # row * width + (s_i - i), still sorted
    wanted = np.arange(k, dtype=np.int64)
    queries = np.arange(n_rows, dtype=np.int64)[:, None] * width + wanted[None, :]
    below = np.searchsorted(shifted, queries, side="right") - starts[:, None]
    ranks = wanted[None, :] + below
    return np.where(ranks < n, order[np.minimum(ranks, n - 1)], -1).astype(np.int64)


class _BlasLimit:
    """One BLAS thread while any caller is inside; the setting is process-wide, so callers
    on several threads share it and only the last one out restores the original."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._inside = 0
        self._controller: ThreadpoolController | None = None
        self._limiter: Any = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._inside == 0:
                # Finding the loaded BLAS libraries takes milliseconds: once per process.
                self._controller = self._controller or ThreadpoolController()
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._inside += 1
        try:
            yield
        finally:
            with self._lock:
                self._inside -= 1
                if self._inside == 0:
                    self._limiter.restore_original_limits()
                    self._limiter = None


single_threaded_blas = _BlasLimit()


def run_blocks(n_rows: int, block: int, threads: int, work: Callable[[int, int], None]) -> None:
    """Call work(start, stop) over [0, n_rows) in blocks, on up to `threads` threads.
    Each call writes its own slice of a shared output, so the order of completion does
    not matter and results do not depend on the thread count."""
    spans = [(start, min(start + block, n_rows)) for start in range(0, n_rows, block)]
    with single_threaded_blas():
        if threads <= 1 or len(spans) <= 1:
            for start, stop in spans:
                work(start, stop)
            return
        with ThreadPoolExecutor(max_workers=min(threads, len(spans))) as pool:
            for future in [pool.submit(work, start, stop) for start, stop in spans]:
                future.result()
