from __future__ import annotations

import numpy as np
import pytest

from movierec.ids import is_movie_id, slugify
from movierec.vocab import GENRES, OCCUPATIONS
from movierec_sim.world import World, WorldConfig

MOVIE_FIELDS = {
    "id": str,
    "tmdb_id": int,
    "imdb_id": str,
    "title": str,
    "original_title": str,
    "adult": str,
    "belongs_to_collection": dict,
    "budget": str,
    "genres": list,
    "homepage": str,
    "original_language": str,
    "overview": str,
    "popularity": str,
    "poster_path": str,
    "production_companies": list,
    "production_countries": list,
    "release_date": (str, type(None)),
    "revenue": str,
    "runtime": int,
    "spoken_languages": list,
    "status": str,
    "vote_average": str,
    "vote_count": str,
}


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldConfig(users=3000, movies=800, seed=21))


def test_the_same_seed_builds_the_same_world(world: World) -> None:
    again = World(WorldConfig(users=3000, movies=800, seed=21))
    assert again.movie_ids == world.movie_ids
    assert np.array_equal(again.user_taste, world.user_taste)
    assert again.movie_json(world.movie_ids[5]) == world.movie_json(world.movie_ids[5])
    other = World(WorldConfig(users=3000, movies=800, seed=22))
    assert other.movie_ids != world.movie_ids


def test_movie_ids_follow_the_slug_rule_and_are_unique(world: World) -> None:
    assert len(set(world.movie_ids)) == world.n_movies
    for m, movie_id in enumerate(world.movie_ids):
        year = int(world.movie_year[m])
        assert movie_id == slugify(world.movie_titles[m], year or None)
        assert is_movie_id(movie_id)
    # The titles exercise the rule's special cases.
    joined = "".join(world.movie_ids)
    assert "_" in joined and "." in joined and "-" in joined and "*" in joined
    assert any(i.startswith("+") for i in world.movie_ids)
    assert any(not t.isascii() for t in world.movie_titles)


def test_movie_documents_have_the_spec_shape(world: World) -> None:
    for movie_id in world.movie_ids[:200]:
        doc = world.movie_json(movie_id)
        assert doc is not None and set(doc) == set(MOVIE_FIELDS)
        for name, kind in MOVIE_FIELDS.items():
            assert isinstance(doc[name], kind), (name, doc[name])
        assert doc["id"] == movie_id
        assert doc["adult"] == (
            "True" if world.movie_adult[world.movie_index[movie_id]] else "False"
        )
        assert float(doc["popularity"]) > 0 and int(doc["budget"]) >= 0
        assert 0 < float(doc["vote_average"]) <= 10 and int(doc["vote_count"]) >= 0
        assert doc["imdb_id"].startswith("tt") and doc["runtime"] > 0
        assert {(g["id"], g["name"]) for g in doc["genres"]} <= set(GENRES)
        assert 1 <= len(doc["genres"]) <= 3
    assert world.movie_json("no+such+movie+1999") is None


def test_a_share_of_movies_is_adult_without_changing_any_other_draw(world: World) -> None:
    # 2% of 800 movies: 16 expected, a binomial spread of 4.
    assert 4 <= world.movie_adult.sum() <= 30
    adult = [m for m in world.movie_ids if world.movie_json(m)["adult"] == "True"]  # type: ignore[index]
    assert adult == [m for i, m in enumerate(world.movie_ids) if world.movie_adult[i]]
    none = World(WorldConfig(users=3000, movies=800, seed=21, adult_share=0.0))
    half = World(WorldConfig(users=3000, movies=800, seed=21, adult_share=0.5))
    assert not none.movie_adult.any() and 300 < half.movie_adult.sum() < 500
    for name, value in vars(world).items():
        if name not in ("config", "movie_adult"):
            for other in (none, half):
                same = getattr(other, name)
                assert (
                    np.array_equal(value, same) if isinstance(value, np.ndarray) else value == same
                )


def test_user_documents_have_the_spec_shape(world: World) -> None:
    for user_id in (1, 17, 3000):
        doc = world.user_json(user_id)
        assert doc is not None and set(doc) == {"user_id", "age", "occupation", "gender"}
        assert doc["user_id"] == user_id and doc["gender"] in ("M", "F")
        assert doc["occupation"] in OCCUPATIONS and 13 <= doc["age"] <= 80
    assert world.user_json(0) is None and world.user_json(3001) is None


def test_popularity_and_activity_are_heavy_tailed(world: World) -> None:
    pop = np.sort(world.movie_popularity)[::-1]
    assert pop[: len(pop) // 10].sum() > 0.4 * pop.sum()  # top 10% of movies: >40% of appeal
    act = np.sort(world.user_activity)[::-1]
    assert act[: len(act) // 10].sum() > 0.3 * act.sum()


def test_tastes_are_tied_to_genres_and_demographics(world: World) -> None:
    # Movies sharing a genre set are closer in taste space than random pairs.
    masks = world.movie_genre_mask
    same = [(i, j) for i in range(200) for j in range(i + 1, 200) if masks[i] == masks[j]]
    v = world.movie_vectors
    same_sim = np.mean([v[i] @ v[j] for i, j in same])
    random_sim = np.mean([v[i] @ v[j] for i in range(50) for j in range(50, 100)])
    assert same_sim > random_sim + 0.1
    # Demographics explain a real share of taste: the spread of group centroids
    # (age group x gender x occupation) is well above what random groups of that size show.
    key = (world.user_age_group.astype(int) * 2 + world.user_gender) * 32 + world.user_occupation
    shuffled = np.random.default_rng(0).permutation(key)
    assert _between_group_share(world.user_taste, key) > 3 * _between_group_share(
        world.user_taste, shuffled
    )


def _between_group_share(x: np.ndarray, groups: np.ndarray) -> float:
    centred = x - x.mean(0)
    total = (centred**2).sum()
    between = 0.0
    for g in np.unique(groups):
        members = centred[groups == g]
        between += len(members) * (members.mean(0) ** 2).sum()
    return between / total


@pytest.mark.parametrize(("users", "movies"), [(0, 10), (10, 0), (10_000_001, 10)])
def test_sizes_out_of_range_are_refused(users: int, movies: int) -> None:
    with pytest.raises(ValueError, match=r"(users|movies)\n  Input should be"):
        WorldConfig(users=users, movies=movies)
