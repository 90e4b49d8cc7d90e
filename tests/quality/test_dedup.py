from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.quality.dedup import DedupWindow


def reference(keys: list[int], window: int) -> list[bool]:
    """Slow and obvious: a key is a duplicate iff it was accepted among the last `window`
    accepted keys (the fast window may remember up to twice that)."""
    accepted: list[int] = []
    out = []
    for key in keys:
        dup = key in accepted[-window:]
        out.append(dup)
        if not dup:
            accepted.append(key)
    return out


# Hash 0 marks an empty slot and is stored as 1: the two collide (2**-63 for real hashes).
@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 30), max_size=300), st.integers(1, 40), st.integers(1, 50))
def test_duplicates_within_the_window_are_always_caught(
    keys: list[int], window: int, chunk: int
) -> None:
    dedup = DedupWindow(window)
    got: list[bool] = []
    for seq, start in enumerate(range(0, len(keys), chunk)):
        got.extend(
            dedup.check(np.array(keys[start : start + chunk], dtype=np.uint64), seq).tolist()
        )
    expected = reference(keys, window)
    # Everything the reference calls a duplicate is one; beyond it, only keys seen within
    # twice the window may be.
    assert all(g for g, e in zip(got, expected, strict=True) if e)
    loose = reference(keys, 2 * window)
    assert all(not g for g, e in zip(got, loose, strict=True) if not e)


def test_first_copies_pass_and_repeats_in_one_batch_are_caught() -> None:
    dedup = DedupWindow(100)
    mask = dedup.check(np.array([5, 6, 5, 7, 6, 0, 0, 1], dtype=np.uint64), 1)
    assert mask.tolist() == [False, False, True, False, True, False, True, True]


@given(st.lists(st.integers(0, 2**64 - 1), max_size=200), st.integers(1, 30))
def test_restoring_from_the_journal_remembers_the_same_keys(keys: list[int], window: int) -> None:
    dedup = DedupWindow(window)
    journal: dict[int, np.ndarray] = {}
    for seq, start in enumerate(range(0, len(keys), 17), start=1):
        part = np.array(keys[start : start + 17], dtype=np.uint64)
        mask = dedup.check(part, seq)
        journal[seq] = part[~mask]
    restored = DedupWindow.restore(dedup.state(), journal.items())
    probe = np.array([*keys, 123456789], dtype=np.uint64)
    assert np.array_equal(restored.check(probe.copy(), 99), dedup.check(probe.copy(), 99))


def test_a_million_lines_with_a_few_repeats() -> None:
    rng = np.random.default_rng(0)
    keys = rng.integers(1, 2**63, 1_000_000, dtype=np.uint64)
    repeats = rng.choice(len(keys) - 500, 1000, replace=False)
    stream = np.insert(keys, repeats + 300, keys[repeats])
    mask = DedupWindow(2_000_000).check(stream, 1)
    assert mask.sum() == 1000
