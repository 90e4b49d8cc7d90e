from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from movierec.evaluation.split import cut_at_share, holdout
from movierec.features.interactions import training_data
from movierec.store.events import Checkpoint, EventStore
from tests.support.store import MIN, T0, write_watch


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
