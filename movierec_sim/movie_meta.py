"""The complete movie JSON of the site's API (SPEC section 2), built on demand per movie.

Numbers come as strings where the real API sends strings; cosmetic fields (overview,
companies, poster) are drawn from a per-movie generator, so a document is the same
whenever it is asked for, without keeping 27k documents in memory.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from movierec.vocab import COUNTRIES, LANGUAGES

if TYPE_CHECKING:
    from movierec_sim.world import World

_COMPANY_WORDS = (
    "Pictures Films Studios Entertainment Productions Media Works Cinema Company Partners"
).split()
_COMPANY_NAMES = (
    "Plan B Silver Lantern Northern Red Harbor Blue Sky Golden Gate Iron Bridge Paper "
    "Moon Ember Orchard Sunset Lighthouse Granite Riverbank Crescent Atlas Meridian"
).split()
_OVERVIEW_OPENERS = (
    "When",
    "After",
    "In a world where",
    "Years after",
    "Against all odds,",
    "On the eve of",
)
_POSTER_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


def movie_document(world: World, m: int) -> dict:
    rng = world.meta_rng(m)
    title = world.movie_titles[m]
    year = int(world.movie_year[m])
    lang_code, lang_name, _ = LANGUAGES[int(world.movie_language[m])]
    country = COUNTRIES[int(rng.integers(len(COUNTRIES)))]
    genres = world.movie_genres(m)
    budget = int(rng.choice([0, 1, 1, 1]) * rng.integers(1, 200) * 1_000_000)
    revenue = int(budget * rng.uniform(0, 4)) if budget else 0
    votes = int(world.movie_popularity[m] * rng.uniform(80, 400))
    vote_average = round(min(9.5, max(1.0, 6.2 + 1.6 * float(world.movie_quality[m]))), 1)
    month, day = int(rng.integers(1, 13)), int(rng.integers(1, 29))
    company = (
        f"{_COMPANY_NAMES[int(rng.integers(len(_COMPANY_NAMES)))]} "
        f"{_COMPANY_WORDS[int(rng.integers(len(_COMPANY_WORDS)))]}"
    )
    collection: dict = {}
    if rng.random() < 0.08:
        collection = {
            "id": int(rng.integers(1, 500_000)),
            "name": f"{title} Collection",
            "poster_path": None,
            "backdrop_path": None,
        }
    genre_names = " and ".join(g["name"].lower() for g in genres) or "drama"
    opener = _OVERVIEW_OPENERS[int(rng.integers(len(_OVERVIEW_OPENERS)))]
    return {
        "id": world.movie_ids[m],
        "tmdb_id": int(world.movie_tmdb[m]),
        "imdb_id": f"tt{int(world.movie_imdb[m]):07d}",
        "title": title,
        "original_title": title,
        "adult": "True" if world.movie_adult[m] else "False",
        "belongs_to_collection": collection,
        "budget": str(budget),
        "genres": genres,
        "homepage": "null" if rng.random() < 0.7 else f"http://www.example.com/m{m}",
        "original_language": lang_code,
        "overview": f"{opener} everything changes, a story of {genre_names} unfolds.",
        "popularity": f"{float(world.movie_popularity[m]) * 3.1:.6f}",
        "poster_path": "/" + "".join(rng.choice(list(_POSTER_CHARS), 27)) + ".jpg",
        "production_companies": [{"name": company, "id": int(rng.integers(1, 100_000))}],
        "production_countries": [{"iso_3166_1": country[0], "name": country[1]}],
        "release_date": f"{year:04d}-{month:02d}-{day:02d}" if year else None,
        "revenue": str(revenue),
        "runtime": int(world.movie_runtime[m]),
        "spoken_languages": [{"iso_639_1": lang_code, "name": lang_name}],
        "status": "Released",
        "vote_average": f"{vote_average}",
        "vote_count": str(votes),
    }
