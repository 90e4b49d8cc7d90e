"""Exact-duplicate detection over a sliding window of recent lines, across restarts.

Two generations of open-addressing hash sets of 64-bit line hashes: new hashes go into
the current one; when it holds `window` hashes it becomes the previous one and a fresh
current one starts. A line is a duplicate when its hash is in either generation, so the
window always covers at least the last `window` accepted lines (up to twice that).

Durability is a journal: each batch's new hashes are saved under the batch's sequence
number before the batch commits; recovery replays the journal files the checkpoint names.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
from numba import njit

DEFAULT_WINDOW = 2_000_000
_EMPTY = np.uint64(0)


@njit(cache=True, nogil=True)
def _probe(table: np.ndarray, key: np.uint64) -> int:
    mask = table.shape[0] - 1
    # Fibonacci hashing: the multiply spreads every bit of the key into the top bits.
    slot = int((key * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) & mask
    while True:
        current = table[slot]
        if current == key or current == 0:  # noqa: PLR1714 - the form numba compiles
            return slot
        slot = (slot + 1) & mask


@njit(cache=True, nogil=True)
def _check_insert(
    current: np.ndarray, previous: np.ndarray, keys: np.ndarray, room: int, inserted: np.ndarray
) -> tuple[np.ndarray, int]:
    """Mark keys seen before (in either generation, or earlier in keys). Every key not in
    the current generation goes into it — a new key, or a repeat found only in the
    previous one (its sighting is refreshed, so a repeat is caught as long as its last
    sighting is recent) — until `room` more are in. The keys put in are written to
    `inserted`, in order. Returns (duplicate mask, count put in, or -(i + 1) when full
    at key i)."""
    duplicate = np.zeros(keys.shape[0], dtype=np.bool_)
    count = 0
    for i in range(keys.shape[0]):
        key = keys[i] if keys[i] != 0 else np.uint64(1)  # 0 marks an empty slot
        slot = _probe(current, key)
        if current[slot] == key:
            duplicate[i] = True
            continue
        if count >= room:
            return duplicate, -(i + 1)  # full: the caller rotates and continues from i
        duplicate[i] = previous[_probe(previous, key)] == key
        current[slot] = key
        inserted[count] = key
        count += 1
    return duplicate, count


class DedupWindow:
    def __init__(self, window: int = DEFAULT_WINDOW) -> None:
        if window < 1:
            raise ValueError("the dedup window must hold at least one line")
        self.window = window
        size = 1 << int(np.ceil(np.log2(window * 2)))  # load factor at most 1/2
        self._current = np.zeros(size, dtype=np.uint64)
        self._previous = np.zeros(size, dtype=np.uint64)
        self._count = 0
        # What each generation holds, as [seq, start, stop] slices of journal files (a batch
        # may straddle a rotation: its first part in one generation, the rest in the next).
        self.current: list[list[int]] = []
        self.previous: list[list[int]] = []

    def check(self, hashes: np.ndarray, seq: int) -> tuple[np.ndarray, np.ndarray]:
        """(duplicate mask for hashes in order, the keys remembered under seq — what must
        be written to seq's journal file for restore() to rebuild the same state).

        A key is a duplicate when the same key came within the last `window` keys (at least;
        up to twice that), counting every sighting."""
        keys = np.ascontiguousarray(hashes, dtype=np.uint64)
        duplicate = np.zeros(len(keys), dtype=bool)
        journal = np.empty(len(keys), dtype=np.uint64)
        journaled = 0
        start = 0
        while True:
            room = self.window - self._count
            mask, count = _check_insert(
                self._current, self._previous, keys[start:], room, journal[journaled:]
            )
            full = count < 0
            stop = start - count - 1 if full else len(keys)
            duplicate[start:stop] = mask[: stop - start]
            added = room if full else count  # a full call stopped exactly at its room
            if added:
                self._note(seq, journaled, journaled + added)
            journaled += added
            self._count += added
            if not full:
                return duplicate, journal[:journaled]
            self._rotate()
            start = stop

    def _note(self, seq: int, start: int, stop: int) -> None:
        if self.current and self.current[-1][0] == seq and self.current[-1][2] == start:
            self.current[-1][2] = stop
        else:
            self.current.append([seq, start, stop])

    def _rotate(self) -> None:
        self._previous, self._current = self._current, self._previous
        self._current[:] = 0
        self._count = 0
        self.previous, self.current = self.current, []

    def seqs(self) -> list[int]:
        return sorted({part[0] for part in self.previous + self.current})

    def state(self) -> dict:
        return {"window": self.window, "previous": self.previous, "current": self.current}

    @classmethod
    def restore(
        cls,
        state: dict | None,
        journal: Iterable[tuple[int, np.ndarray]],
        window: int = DEFAULT_WINDOW,
    ) -> DedupWindow:
        """Rebuild from the journal files named by a checkpoint's state."""
        dedup = cls(state["window"] if state else window)
        if not state:
            return dedup
        files = dict(journal)
        for name, table in (("previous", dedup._previous), ("current", dedup._current)):
            for seq, start, stop in state[name]:
                keys = files.get(seq)
                if keys is None:
                    raise FileNotFoundError(f"dedup journal of batch {seq} is missing")
                _insert_all(table, np.ascontiguousarray(keys[start:stop], dtype=np.uint64))
                if name == "current":
                    dedup._count += stop - start
        dedup.previous = [list(part) for part in state["previous"]]
        dedup.current = [list(part) for part in state["current"]]
        return dedup


@njit(cache=True, nogil=True)
def _insert_all(table: np.ndarray, keys: np.ndarray) -> None:
    for i in range(keys.shape[0]):
        key = keys[i] if keys[i] != 0 else np.uint64(1)
        table[_probe(table, key)] = key


def journal_path(directory: Path, seq: int) -> Path:
    return directory / f"dedup-{seq:010d}.npy"
