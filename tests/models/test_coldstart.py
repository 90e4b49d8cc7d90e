"""Cold start: the contract, segment back-off, and new movies reached by their genres."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import pytest

from movierec.models.base import TrainingData
from movierec.models.coldstart import GLOBAL, ColdStartRecommender, age_groups
from movierec.vocab import GENRES, age_group
from tests.models.contract import RecommenderContract, build_data, planted_data


class TestColdStart(RecommenderContract):
    bad_params: ClassVar[tuple[dict[str, object], ...]] = (
        {"popularity_weight": -0.1},
        {"popularity_weight": 1.5},
        {"popularity_weight": float("nan")},
        {"min_segment_users": 0},
        {"half_life_days": 0.0},
        {"num_threads": -1},
    )

    def make(self) -> ColdStartRecommender:
        return ColdStartRecommender(min_segment_users=3)


def genre_bit(name: str) -> int:
    return 1 << [genre for _, genre in GENRES].index(name)


def demographic_data() -> TrainingData:
    """Item i is the favourite of one group of users:
    0: four 25-34 year old men (occupation 4); 1: one 35-44 woman (occupation 7);
    2: three more of occupation 7 (under 18, gender unknown); 3: everyone else, and most
    watched overall. User 9 has no history and is a 25-34 man."""
    #            user: 0   1   2   3   4   5   6   7   8   9
    age = np.array([30, 26, 33, 28, 40, 15, 16, 17, 60, 29])
    gender = np.array([0, 0, 0, 0, 1, -1, -1, -1, 1, 0])
    job = np.array([4, 4, 4, 4, 7, 7, 7, 7, 1, 4])
    favourite = [0, 0, 0, 0, 1, 2, 2, 2]
    rows = list(range(8)) + [8] * 3 + list(range(8))
    cols = favourite + [3] * 3 + [3] * 8
    values = [5.0] * 8 + [10.0] * 3 + [1.0] * 8
    return build_data(
        np.array(rows),
        np.array(cols),
        np.array(values),
        n_users=10,
        n_items=5,
        user_age=age,
        user_gender=gender,
        user_occupation=job,
    )


def test_segments_back_off_from_demography_to_occupation_to_everyone() -> None:
    data = demographic_data()
    model = ColdStartRecommender(min_segment_users=3).fit(data)
    lists = model.recommend_for_profiles(
        age=np.array([31, 41, 41, -1, 41, -1, 12]),
        gender=np.array([0, 1, 1, 1, 1, -1, 0]),
        occupation=np.array([4, 7, 9, 7, -1, -1, 7]),
        k=2,
    )
    assert lists[0].tolist()[0] == 0  # 25-34 men: four users, trusted
    assert lists[1].tolist()[0] == 2  # 35-44 women: one user -> occupation 7
    assert lists[2].tolist()[0] == 3  # nobody of occupation 9 -> everyone
    assert lists[3].tolist()[0] == 2  # age unknown -> occupation
    assert lists[4].tolist()[0] == 3  # occupation unknown too -> everyone
    assert lists[5].tolist() == lists[4].tolist()
    assert lists[6].tolist()[0] == 2  # under-18 men: no user with history
    # A training user without history gets the list of their own segment.
    assert model.recommend(data.user_ids[9:], 2)[0].tolist()[0] == 0


def test_min_segment_users_controls_the_back_off() -> None:
    data = demographic_data()
    strict = ColdStartRecommender(min_segment_users=5).fit(data)
    lists = strict.recommend_for_profiles(np.array([31]), np.array([0]), np.array([4]), k=1)
    assert lists.tolist() == [[3]]  # four 25-34 men are not enough any more
    assert strict.user_segment is not None and strict.user_segment[9] == GLOBAL


def test_profiles_are_checked_and_padded() -> None:
    model = ColdStartRecommender().fit(demographic_data())
    with pytest.raises(ValueError):
        model.recommend_for_profiles(np.array([20, 30]), np.array([0]), np.array([1, 2]))
    lists = model.recommend_for_profiles(np.array([-1]), np.array([-1]), np.array([-1]), k=7)
    assert lists.tolist() == [[3, 0, 2, 1, 4, -1, -1]]


def test_age_groups_match_the_vocabulary() -> None:
    ages = np.arange(0, 121)
    assert age_groups(ages).tolist() == [age_group(int(a)) for a in ages]
    assert age_groups(np.array([-1])).tolist() == [-1]


def test_new_movie_reaches_users_whose_history_matches_its_genres() -> None:
    comedy, horror = genre_bit("Comedy"), genre_bit("Horror")
    # Items 0-5: comedies watched by users 1-5; 6-8: horror films, watched by user 0 only;
    # 9: a new horror film that nobody has watched yet; 10: a new comedy.
    rows = [u for u in range(1, 6) for _ in range(6)] + [0, 0, 0]
    cols = [i for _ in range(1, 6) for i in range(6)] + [6, 7, 8]
    data = build_data(
        np.array(rows),
        np.array(cols),
        np.ones(len(rows)),
        n_users=7,
        n_items=11,
        item_genres=np.array([comedy] * 6 + [horror] * 4 + [comedy]),
    )
    model = ColdStartRecommender().fit(data)
    horror_fan = model.recommend(data.user_ids[:1], 2)[0].tolist()
    assert horror_fan[0] == 9
    assert model.recommend(data.user_ids[1:2], 1)[0].tolist() == [10]  # the new comedy
    # Without history there is nothing to match: popularity, where the new film is last.
    assert model.recommend(data.user_ids[6:], 11)[0].tolist()[0] in range(6)


def test_only_popularity_when_weight_is_one() -> None:
    data = planted_data()
    model = ColdStartRecommender(popularity_weight=1.0, min_segment_users=3).fit(data)
    assert model.user_segment is not None and model.segment_scores is not None
    lists = model.recommend(data.user_ids[:28], 5)
    for row, listed in enumerate(lists):
        scores = model.segment_scores[model.user_segment[row]]
        unseen = np.setdiff1d(np.arange(data.n_items), data.matrix[row].indices)
        # The best five unseen by the segment's popularity (equal scores in any order).
        best = np.sort(scores[unseen])[::-1][:5]
        assert scores[listed] == pytest.approx(best, rel=1e-6)
