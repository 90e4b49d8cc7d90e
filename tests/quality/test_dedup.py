from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.quality.dedup import DedupWindow


def run(dedup: DedupWindow, keys: list[int], chunk: int) -> tuple[list[bool], dict]:
    flags: list[bool] = []
    journal: dict[int, np.ndarray] = {}
    for seq, start in enumerate(range(0, len(keys), chunk), start=1):
        mask, remembered = dedup.check(np.array(keys[start : start + chunk], np.uint64), seq)
        flags.extend(mask.tolist())
        journal[seq] = remembered
    return flags, journal


# Hash 0 marks an empty slot and is stored as 1: the two collide (2**-63 for real hashes).
@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(1, 12), max_size=300), st.integers(1, 20), st.integers(1, 50))
def test_repeats_within_the_window_are_caught_and_first_sightings_never(
    keys: list[int], window: int, chunk: int
) -> None:
    flags, _ = run(DedupWindow(window), keys, chunk)
    last_seen: dict[int, int] = {}
    for i, key in enumerate(keys):
        if key not in last_seen:
            assert not flags[i], "a key never seen before is no duplicate"
        elif i - last_seen[key] <= window:
            assert flags[i], "a repeat within the window must be caught"
        last_seen[key] = i


def test_first_copies_pass_and_repeats_in_one_batch_are_caught() -> None:
    mask, remembered = DedupWindow(100).check(np.array([5, 6, 5, 7, 6, 0, 0, 1], np.uint64), 1)
    assert mask.tolist() == [False, False, True, False, True, False, True, True]
    assert remembered.tolist() == [5, 6, 7, 1]  # stored as 1


@given(st.lists(st.integers(0, 2**64 - 1), max_size=200), st.integers(1, 30), st.integers(1, 40))
def test_restoring_from_the_journal_rebuilds_the_same_state(
    keys: list[int], window: int, chunk: int
) -> None:
    dedup = DedupWindow(window)
    _, journal = run(dedup, keys, chunk)
    restored = DedupWindow.restore(dedup.state(), journal.items())
    probe = np.array([*keys, 123456789, *keys[::-1]], dtype=np.uint64)
    a, _ = restored.check(probe.copy(), 99)
    b, _ = dedup.check(probe.copy(), 99)
    assert np.array_equal(a, b)


def test_a_million_lines_with_a_few_repeats() -> None:
    rng = np.random.default_rng(0)
    keys = rng.integers(1, 2**63, 1_000_000, dtype=np.uint64)
    repeats = rng.choice(len(keys) - 500, 1000, replace=False)
    stream = np.insert(keys, repeats + 300, keys[repeats])
    mask, remembered = DedupWindow(2_000_000).check(stream, 1)
    assert mask.sum() == 1000 and len(remembered) == 1_000_000
