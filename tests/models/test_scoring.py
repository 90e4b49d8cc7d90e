"""The shared list-making helpers against plain sorted references."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from threadpoolctl import threadpool_info

from movierec.models.scoring import (
    rank_prior,
    run_blocks,
    single_threaded_blas,
    top_k,
    unseen_in_order,
)


@st.composite
def score_rows(draw: st.DrawFn) -> np.ndarray:
    n_rows, n_columns = draw(st.integers(0, 6)), draw(st.integers(1, 30))
    # Few distinct values: plenty of ties, and -inf for excluded items.
    values = st.sampled_from([-np.inf, -1.0, 0.0, 0.5, 1.0, 2.0])
    cells = draw(st.lists(values, min_size=n_rows * n_columns, max_size=n_rows * n_columns))
    return np.array(cells, dtype=np.float32).reshape(n_rows, n_columns)


@settings(max_examples=200, deadline=None)
@given(scores=score_rows(), k=st.integers(0, 35))
def test_top_k_is_a_sorted_prefix(scores: np.ndarray, k: int) -> None:
    lists = top_k(scores, k)
    assert lists.shape == (scores.shape[0], k)
    for row, listed in zip(scores, lists, strict=True):
        ranked = sorted(
            (i for i in range(len(row)) if row[i] != -np.inf), key=lambda i: (-row[i], i)
        )
        expected = ranked[:k] + [-1] * max(0, k - len(ranked))
        valid = listed[listed >= 0]
        # Same scores in the same order; at the cut, which of equal items is kept may vary.
        assert [row[i] for i in valid] == [row[i] for i in expected if i >= 0]
        assert len(valid) == len(set(valid.tolist()))
        assert (listed[len(valid) :] == -1).all()


@settings(max_examples=200, deadline=None)
@given(
    n_items=st.integers(1, 25),
    n_rows=st.integers(0, 5),
    k=st.integers(0, 30),
    seed=st.integers(0, 2**32 - 1),
)
def test_unseen_in_order_skips_seen_items(n_items: int, n_rows: int, k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    order = rng.permutation(n_items)
    seen = [set(rng.choice(n_items, rng.integers(0, n_items + 1), replace=False).tolist())
            for _ in range(n_rows)]  # fmt: skip
    owner = np.array([row for row, items in enumerate(seen) for _ in items], dtype=np.int64)
    items = np.array([item for row in seen for item in sorted(row)], dtype=np.int64)
    lists = unseen_in_order(order, owner, items, n_rows, k)
    for row, listed in enumerate(lists):
        expected = [int(i) for i in order if i not in seen[row]][:k]
        assert listed.tolist() == expected + [-1] * (k - len(expected))


def test_rank_prior_decreases_along_the_order() -> None:
    order = np.array([4, 0, 3, 1, 2])
    prior = rank_prior(order)
    assert (np.diff(prior[order]) < 0).all()
    assert (prior < 0).all() and (prior > -1).all()


def test_run_blocks_covers_every_row_once() -> None:
    hits = np.zeros(103, dtype=np.int64)

    def work(start: int, stop: int) -> None:
        hits[start:stop] += 1

    run_blocks(103, 10, 2, work)
    assert (hits == 1).all()
    run_blocks(0, 10, 2, work)


def blas_threads() -> list[int]:
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_single_threaded_blas_nests_and_restores() -> None:
    before = blas_threads()
    with single_threaded_blas():
        assert set(blas_threads()) <= {1}
        with single_threaded_blas():
            assert set(blas_threads()) <= {1}
        assert set(blas_threads()) <= {1}  # the outer caller is still inside
    assert blas_threads() == before
