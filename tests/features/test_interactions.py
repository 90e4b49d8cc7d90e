"""Training data: the confidence of each (user, movie), and nothing from after the cut."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from movierec.catalog.reader import Catalogue
from movierec.features.feedback import FeedbackConfig, build
from movierec.features.interactions import time_range, training_data
from movierec.features.trust import TrustConfig
from movierec.ingest import tables
from movierec.registry.versions import data_hash
from movierec.store.events import Checkpoint, EventStore
from tests.support.simulated import SimulatedStore

DAY = 86_400 * 10**9
NOW = 1_736_000_000 * 10**9


def catalogue(movies: dict[str, int]) -> Catalogue:
    ids = np.array(sorted(movies), dtype=object)
    return Catalogue(
        user_ids=np.array([1, 2], np.int64),
        user_age=np.array([30, 61], np.int16),
        user_gender=np.array([0, 1], np.int8),
        user_occupation=np.array([11, -1], np.int8),
        movie_ids=ids,
        movie_genres=np.array([1, 2, 4][: len(ids)], np.int64),
        movie_year=np.zeros(len(ids), np.int16),
        movie_runtime=np.array([movies[m] for m in ids], np.int32),
    )


def pairs(rows: list[tuple]) -> pa.Table:
    schema = pa.schema(
        [
            ("user_id", pa.int32()),
            ("movie_id", pa.string()),
            ("minutes", pa.int64()),
            ("last_minute", pa.int32()),
            ("rating", pa.int8()),
            ("first_ns", pa.int64()),
            ("last_ns", pa.int64()),
        ]
    )
    return pa.table({f.name: [r[i] for r in rows] for i, f in enumerate(schema)}, schema=schema)


def test_confidence_follows_watching_rating_and_recency() -> None:
    data = build(
        pairs(
            [
                (1, "a+2000", 50, 49, None, NOW - DAY, NOW - DAY),  # half of a 100-minute movie
                (1, "b+2000", 100, 99, 5, NOW - DAY, NOW - DAY),  # all of it, and 5 stars
                (2, "a+2000", 100, 99, 1, NOW - DAY, NOW - DAY),  # all of it, but 1 star
                (2, "b+2000", 0, -1, 4, NOW - DAY, NOW - DAY),  # rated without watching
                (2, "c+2000", 2, 1, None, NOW - 61 * DAY, NOW - 61 * DAY),  # a glance, long ago
            ]
        ),
        catalogue({"a+2000": 100, "b+2000": 100, "c+2000": 0}),
        NOW,
        # Confidence alone: trust would count user 1 (first seen 60 days in) as a newcomer.
        FeedbackConfig(recency_half_life_days=60.0, trust=TrustConfig(enabled=False)),
    )
    m = data.matrix.toarray()
    decay = 2 ** (-1 / 60)
    assert list(data.item_ids) == ["a+2000", "b+2000", "c+2000"]
    np.testing.assert_allclose(m[0], [0.5 * decay, 1.5 * decay, 0], rtol=1e-6)
    # c has no runtime in the catalogue: one past the last minute seen (2), so 2/2 = 1.
    np.testing.assert_allclose(m[1], [0.3 * decay, 0.8 * decay, 1.0 * 2 ** (-61 / 60)], rtol=1e-6)
    assert data.user_age.tolist() == [30, 61] and data.user_occupation.tolist() == [11, -1]
    assert data.item_genres.tolist() == [1, 2, 4]


def test_a_movie_known_only_to_the_catalogue_gets_a_column() -> None:
    data = build(
        pairs([(1, "a+2000", 10, 9, None, NOW, NOW)]),
        catalogue({"a+2000": 100, "new+2025": 90}),
        NOW + 1,
    )
    assert list(data.item_ids) == ["a+2000", "new+2025"]
    assert data.matrix[:, 1].nnz == 0


def test_no_future_event_reaches_training(tmp_path: Path, simulated_store: SimulatedStore) -> None:
    store_dir = tmp_path / "store"
    shutil.copytree(simulated_store.path, store_dir)
    store = EventStore(store_dir)
    first, last = time_range(store)
    cut = first + (last - first) // 2
    before = training_data(store, cut)
    assert before.event_time_ns.max() < cut and before.now_ns == cut
    # Events after the cut arrive: a new user, a new movie, more of old users.
    times = np.array([cut, cut + DAY, last + DAY], dtype=np.int64)
    table = tables.watch_table(
        np.arange(3),
        times,
        np.array([1, 999_999, 5], np.int32),
        np.array([0, 1, 0], np.int32),
        np.array([0, 0, 3], np.int32),
        [before.item_ids[0], "brand+new+2030"],
    )
    seq = store.checkpoint().seq + 1
    for date, part in tables.by_date(table, times):
        store.write_table(f"events/watch/date={date}", seq, part)
    store.commit(Checkpoint(seq=seq, position=store.checkpoint().position))
    after = training_data(store, cut)
    assert data_hash(after) == data_hash(before)
    assert np.array_equal(after.event_time_ns, before.event_time_ns)
    assert training_data(store, last + 2 * DAY).matrix.nnz > before.matrix.nnz


def test_a_stream_of_ratings_alone_is_enough(tmp_path: Path) -> None:
    store = EventStore(tmp_path)
    store.recover()
    times = NOW + np.arange(6, dtype=np.int64) * DAY
    table = tables.rate_table(
        np.arange(6),
        times,
        np.array([1, 1, 2, 2, 3, 3], np.int32),
        np.array([0, 1, 1, 2, 0, 2], np.int32),
        np.array([5, 2, 4, 5, 3, 1], np.int32),
        ["a+1", "b+2", "c+3"],
    )
    for date, part in tables.by_date(table, times):
        store.write_table(f"events/rate/date={date}", 1, part)
    store.commit(Checkpoint(seq=1))
    data = training_data(store, NOW + 10 * DAY)
    # User 1 gave 5 stars 10 days before the cut and 2 stars 9 days before.
    expected = [1.0 * 2 ** (-10 / 60), 0.4 * 2 ** (-9 / 60)]
    np.testing.assert_allclose(data.matrix.toarray()[0, :2], expected, rtol=1e-5)
    assert data.matrix.nnz == 6


@pytest.mark.parametrize("half_life", [0.0, -1.0])
def test_bad_feedback_settings_are_refused(half_life: float) -> None:
    with pytest.raises(ValueError, match="half_life"):
        FeedbackConfig(recency_half_life_days=half_life)
