from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec.evaluation.split import (
    SplitConfig,
    cut_at_share,
    holdout,
    latest_per_user,
    liked,
    positive_rating,
)
from movierec.features.interactions import training_data
from movierec.store.events import Checkpoint, EventStore
from tests.support.store import MIN, T0, write_rate, write_watch


def test_the_test_set_holds_only_watches_after_the_cut_of_movies_new_to_the_user(
    tmp_path: Path,
) -> None:
    store = EventStore(tmp_path)
    store.recover()
    cut = T0 + 100 * MIN
    write_watch(
        store,
        1,
        [
            (T0, 1, "a+2000", 0),
            (T0 + MIN, 2, "b+2000", 0),  # before the cut
            (cut, 1, "a+2000", 1),  # a rewatch: not a discovery
            (cut + MIN, 1, "b+2000", 0),
            (cut + 2 * MIN, 1, "b+2000", 1),  # new to user 1
            (cut + MIN, 3, "a+2000", 0),  # a user with no history
            (cut + MIN, 2, "z+1999", 0),  # a movie training never saw
        ],
    )
    store.commit(Checkpoint(seq=1))
    train = training_data(store, cut)
    test = holdout(store, train, cut)
    items = list(train.item_ids)
    assert test.user_ids.tolist() == [1, 3]
    dense = test.relevant.toarray()
    assert dense[0, items.index("b+2000")] == 1 and dense[0, items.index("a+2000")] == 0
    assert dense[1, items.index("a+2000")] == 1
    assert test.unknown_items == 1


def test_cut_at_share() -> None:
    assert cut_at_share(0, 100, 0.8) == 80
    with pytest.raises(ValueError):
        cut_at_share(0, 100, 1.0)
    assert np.isclose(cut_at_share(10, 20, 0.5), 15)


def test_ratings_count_as_relevance_by_stars_and_a_low_rating_cancels_a_watch(
    tmp_path: Path,
) -> None:
    store = EventStore(tmp_path)
    store.recover()
    cut = T0 + 100 * MIN
    # User 9 knew b and c before the cut: training has columns for them.
    watches = [(T0, 1, "a+2000", 0), (cut + MIN, 1, "b+2000", 0), (T0, 9, "b+2000", 0)]
    write_watch(store, 1, [*watches, (T0, 9, "c+2000", 0)])
    write_rate(
        store,
        1,
        [
            (T0, 2, "a+2000", 5),  # before the cut
            (cut + MIN, 2, "b+2000", 4),  # liked: relevant
            (cut + MIN, 2, "c+2000", 3),  # lukewarm: not relevant
            (cut + 2 * MIN, 1, "b+2000", 1),  # watched, then rated 1 star: not relevant
            (cut + MIN, 1, "c+2000", 5),
        ],
    )
    store.commit(Checkpoint(seq=1))
    train = training_data(store, cut)
    items = list(train.item_ids)
    test = holdout(store, train, cut, positive=4.0)
    relevant = {
        (int(user), items[col])
        for user, row in zip(test.user_ids, test.relevant.tolil().rows, strict=True)
        for col in row
    }
    assert relevant == {(2, "b+2000"), (1, "c+2000")}
    # On a 10-star site the same setting asks for 8.
    assert positive_rating(SplitConfig(), 10) == 8.0


def test_liked() -> None:
    minutes = np.array([0, 3, 3, 0, 0])
    rating = np.array([0, 0, 2, 4, 3])
    assert liked(minutes, rating, 4.0).tolist() == [False, True, False, True, False]


@given(
    counts=st.lists(st.integers(1, 12), min_size=1, max_size=15),
    share=st.floats(0.05, 0.95),
    seed=st.integers(0, 1000),
)
def test_each_user_holds_out_their_latest_and_keeps_one_to_learn_from(
    counts: list[int], share: float, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(len(counts)), counts)
    first = rng.integers(0, 50, size=len(users))  # ties happen: broken by movie id
    movies = [f"m{i:03d}+2000" for i in rng.permutation(len(users))]
    pairs = pa.table({"user_id": users, "movie_id": movies, "first_ns": first})
    held = latest_per_user(pairs, share)
    for user, n in enumerate(counts):
        mine = np.flatnonzero(users == user)
        expected = min(math.ceil(share * n), n - 1)
        assert held[mine].sum() == expected
        # The held ones are the latest: no kept pair comes after a held one.
        order = sorted(mine, key=lambda i: (first[i], movies[i]))
        flags = held[order].tolist()
        assert flags == sorted(flags)
