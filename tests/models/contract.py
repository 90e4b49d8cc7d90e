"""The contract every recommender keeps, as a mixin: `class TestX(RecommenderContract)`
with a `make()` that returns an unfitted model and `bad_params`, hyperparameters that
must be refused.

The shared data has a known right answer: two groups of users, each watching only the
movies of its own half of the catalogue, and two users with no history at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec.models import scoring
from movierec.models.base import Recommender, TrainingData
from movierec.models.kinds import load_model, save_model
from movierec.models.popularity import NS_PER_DAY, PopularityRecommender

N_USERS, N_ITEMS, HALF = 30, 40, 20
EMPTY_ROWS = (28, 29)  # known to the data, but without any interaction
NOW_NS = 1_750_000_000 * 10**9
UNKNOWN = np.array([-7, 1, 10**9], dtype=np.int64)


def build_data(
    rows: np.ndarray,
    cols: np.ndarray,
    values: np.ndarray,
    n_users: int,
    n_items: int,
    age_days: np.ndarray | None = None,
    **side: Any,
) -> TrainingData:
    """TrainingData with one event per (row, col) interaction, age_days before now."""
    rows, cols = np.asarray(rows, np.int32), np.asarray(cols, np.int32)
    values = np.asarray(values, np.float32)
    matrix = sp.csr_matrix((values, (rows, cols)), shape=(n_users, n_items), dtype=np.float32)
    matrix.sum_duplicates()
    age = np.zeros(len(rows)) if age_days is None else np.asarray(age_days, np.float64)
    return TrainingData(
        matrix=matrix,
        user_ids=1000 + 3 * np.arange(n_users, dtype=np.int64),
        item_ids=np.array([f"movie+{i}+{1990 + i}" for i in range(n_items)], dtype=object),
        now_ns=NOW_NS,
        event_user=rows,
        event_item=cols,
        event_time_ns=(NOW_NS - age * NS_PER_DAY).astype(np.int64),
        event_weight=values,
        **side,
    )


def planted_data(seed: int = 7) -> TrainingData:
    """Users 0-13 watch 8 of items 0-19, users 14-27 8 of items 20-39; 28, 29 nothing."""
    rng = np.random.default_rng(seed)
    rows, cols = [], []
    for user in range(N_USERS - len(EMPTY_ROWS)):
        first = 0 if user < 14 else HALF
        rows += [user] * 8
        cols += list(first + rng.choice(HALF, size=8, replace=False))
    group_b = np.arange(N_USERS) >= 14
    action, drama = 0b11, 0b1000000 | 0b10000000000000  # Action|Adventure, Drama|Romance
    return build_data(
        np.array(rows),
        np.array(cols),
        rng.integers(1, 4, size=len(rows)),
        N_USERS,
        N_ITEMS,
        age_days=rng.uniform(0, 30, size=len(rows)),
        user_age=np.where(group_b, 40, 27),
        user_gender=group_b.astype(np.int64),
        user_occupation=rng.integers(0, 21, size=N_USERS),
        item_genres=np.where(np.arange(N_ITEMS) < HALF, action, drama),
        item_year=np.full(N_ITEMS, 2001),
    )


@st.composite
def small_data(draw: st.DrawFn) -> TrainingData:
    """Random small sparse interactions, with side information (some of it unknown)."""
    n_users, n_items = draw(st.integers(1, 10)), draw(st.integers(1, 14))
    cells = draw(
        st.lists(
            st.tuples(st.integers(0, n_users - 1), st.integers(0, n_items - 1)),
            max_size=50,
            unique=True,
        )
    )
    rows = np.array([r for r, _ in cells], dtype=np.int64)
    cols = np.array([c for _, c in cells], dtype=np.int64)
    values = draw(st.lists(st.integers(1, 5), min_size=len(cells), max_size=len(cells)))
    ages = draw(st.lists(st.integers(0, 60), min_size=len(cells), max_size=len(cells)))
    return build_data(
        rows,
        cols,
        np.array(values),
        n_users,
        n_items,
        age_days=np.array(ages),
        user_age=np.array(draw(st.lists(st.integers(-1, 80), min_size=n_users, max_size=n_users))),
        user_gender=np.array(
            draw(st.lists(st.integers(-1, 1), min_size=n_users, max_size=n_users))
        ),
        user_occupation=np.array(
            draw(st.lists(st.integers(-1, 20), min_size=n_users, max_size=n_users))
        ),
        item_genres=np.array(
            draw(st.lists(st.integers(0, 2**19 - 1), min_size=n_items, max_size=n_items))
        ),
    )


def seen_items(data: TrainingData, row: int) -> set[int]:
    return set(data.matrix[row].indices.tolist())


def check_lists(data: TrainingData, users: np.ndarray, lists: np.ndarray, k: int) -> None:
    """Valid indices, -1 only as trailing padding, no duplicates, nothing watched, full."""
    assert lists.shape == (len(users), k)
    assert np.issubdtype(lists.dtype, np.integer)
    for user, row in zip(users, lists, strict=True):
        valid = row[row >= 0]
        assert (row[len(valid) :] == -1).all(), "-1 only after the last item"
        assert (valid < data.n_items).all()
        assert len(set(valid.tolist())) == len(valid), "duplicate in a list"
        index = data.user_rows(np.array([user]))[0]
        seen = seen_items(data, index) if index >= 0 else set()
        assert not seen & set(valid.tolist()), "recommended a training item"
        assert len(valid) == min(k, data.n_items - len(seen)), "list not full"


class RecommenderContract:
    bad_params: ClassVar[tuple[dict[str, Any], ...]] = ()
    # Unknown users get exactly the popularity model's list (default half-life).
    fallback_is_popularity: ClassVar[bool] = True

    def make(self) -> Recommender:
        raise NotImplementedError

    @pytest.fixture
    def data(self) -> TrainingData:
        return planted_data()

    @pytest.fixture
    def fitted(self, data: TrainingData) -> Recommender:
        return self.make().fit(data)

    @pytest.fixture
    def rng(self) -> np.random.Generator:
        return np.random.default_rng(20240601)

    def all_users(self, data: TrainingData) -> np.ndarray:
        return np.concatenate([data.user_ids, UNKNOWN])

    def test_shapes_and_padding(self, fitted: Recommender, data: TrainingData) -> None:
        users = self.all_users(data)
        for k in (0, 1, 5, N_ITEMS - 8, N_ITEMS + 5):
            check_lists(data, users, fitted.recommend(users, k), k)

    def test_lists_are_full_when_candidates_exist(
        self, fitted: Recommender, data: TrainingData
    ) -> None:
        lists = fitted.recommend(self.all_users(data), 20)
        assert (lists >= 0).all()

    def test_unknown_users_get_the_fallback(self, fitted: Recommender, data: TrainingData) -> None:
        lists = fitted.recommend(UNKNOWN, 10)
        assert (lists >= 0).all() and (lists == lists[0]).all()
        if self.fallback_is_popularity:
            popular = PopularityRecommender().fit(data).recommend(UNKNOWN[:1], 10)
            assert lists[0].tolist() == popular[0].tolist()

    def test_users_without_history_get_full_lists(
        self, fitted: Recommender, data: TrainingData
    ) -> None:
        lists = fitted.recommend(data.user_ids[list(EMPTY_ROWS)], N_ITEMS)
        assert (lists >= 0).all()

    def test_recommend_ids_maps_indices(self, fitted: Recommender, data: TrainingData) -> None:
        users = self.all_users(data)
        lists = fitted.recommend(users, 7)
        names = fitted.recommend_ids(users, 7)
        assert names == [[data.item_ids[i] for i in row if i >= 0] for row in lists]
        assert all(isinstance(name, str) for row in names for name in row)

    def test_lists_do_not_depend_on_the_batch(
        self, fitted: Recommender, data: TrainingData, rng: np.random.Generator
    ) -> None:
        users = self.all_users(data)
        everyone = fitted.recommend(users, 10)
        picked = rng.permutation(len(users))[:11]
        assert (fitted.recommend(users[picked], 10) == everyone[picked]).all()
        for position in picked[:3]:
            assert (
                fitted.recommend(users[position : position + 1], 10) == everyone[position]
            ).all()

    def test_blocks_and_threads_do_not_change_lists(
        self, fitted: Recommender, data: TrainingData, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        users = self.all_users(data)
        whole = fitted.recommend(users, 10)
        monkeypatch.setattr(scoring, "BLOCK_BYTES", 4 * N_ITEMS * 3)  # 3 users a block
        assert (fitted.recommend(users, 10) == whole).all()

    def test_deterministic_for_fixed_seed(self, data: TrainingData) -> None:
        users = self.all_users(data)
        first = self.make().fit(data).recommend(users, 15)
        assert (self.make().fit(data).recommend(users, 15) == first).all()

    def test_save_load_gives_identical_lists(
        self, fitted: Recommender, data: TrainingData, tmp_path: Path
    ) -> None:
        directory = save_model(fitted, tmp_path / "model")
        document = json.loads((directory / "model.json").read_text())
        assert document == {"name": fitted.name, "params": fitted.params.to_dict()}
        assert not list(directory.glob("*.pkl"))
        users = self.all_users(data)
        for loaded in (load_model(directory), type(fitted).load(directory)):
            assert type(loaded) is type(fitted) and loaded.params == fitted.params
            assert loaded.item_ids.tolist() == data.item_ids.tolist()
            for k in (10, N_ITEMS + 2):
                assert (loaded.recommend(users, k) == fitted.recommend(users, k)).all()

    def test_bad_hyperparameters_raise(self) -> None:
        model_type = type(self.make())
        assert self.bad_params, "list some hyperparameters the model must refuse"
        for bad in self.bad_params:
            with pytest.raises(ValueError):
                model_type(**bad)
        with pytest.raises(TypeError):
            model_type(no_such_parameter=1)
        with pytest.raises(TypeError):
            model_type(object())  # type: ignore[arg-type]

    def test_data_without_interactions(self) -> None:
        empty = build_data(np.empty(0), np.empty(0), np.empty(0), n_users=3, n_items=4)
        model = self.make().fit(empty)
        users = np.concatenate([empty.user_ids, UNKNOWN])
        assert (model.recommend(users, 5) == [0, 1, 2, 3, -1]).all()

    def test_unfitted_model_refuses_to_recommend(self) -> None:
        with pytest.raises(RuntimeError):
            self.make().recommend(np.array([1]), 5)

    def test_bad_k_raises(self, fitted: Recommender) -> None:
        with pytest.raises(ValueError):
            fitted.recommend(np.array([1000]), -1)

    def test_empty_request(self, fitted: Recommender) -> None:
        assert fitted.recommend(np.empty(0, dtype=np.int64), 5).shape == (0, 5)

    # One test function, run by every model's class: that is the point of the contract,
    # and the examples do not depend on the class, so sharing them is harmless.
    @settings(
        max_examples=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.differing_executors],
    )
    @given(data=small_data(), k=st.integers(1, 16))
    def test_lists_valid_on_random_data(self, data: TrainingData, k: int) -> None:
        model = self.make().fit(data)
        users = np.concatenate([data.user_ids, UNKNOWN[:1]])
        check_lists(data, users, model.recommend(users, k), k)

    def test_a_list_from_an_explicit_history_excludes_it_and_is_full(
        self, fitted: Recommender, data: TrainingData, rng: np.random.Generator
    ) -> None:
        for user in data.user_ids[:10]:
            row = data.user_rows(np.array([user]))[0]
            history = data.matrix.indices[data.matrix.indptr[row] : data.matrix.indptr[row + 1]]
            extra = rng.choice(np.setdiff1d(np.arange(data.n_items), history), 2, replace=False)
            for items in (history, np.concatenate([history, extra])):
                ranked = fitted.recommend_history(int(user), items, None, 10)
                assert len(ranked) == 10 and (ranked >= 0).all()
                assert not np.isin(ranked, items).any()
                assert len(set(ranked.tolist())) == 10

    def test_a_newly_watched_movie_leaves_the_list(
        self, fitted: Recommender, data: TrainingData
    ) -> None:
        user = int(data.user_ids[0])
        row = data.user_rows(np.array([user]))[0]
        history = data.matrix.indices[data.matrix.indptr[row] : data.matrix.indptr[row + 1]]
        before = fitted.recommend_history(user, history, None, 10)
        after = fitted.recommend_history(user, np.append(history, before[0]), None, 10)
        assert before[0] not in after
        assert fitted.recommend_history(999_999, np.array([], np.int64), None, 5).shape == (5,)
