"""The simulated site's world: users and movies with visible metadata and hidden tastes.

Everything is drawn from one seed, as arrays (a full-size world of 1M users x 27k movies
builds in seconds). Hidden tastes are latent factors tied to genres and demographics; the
oracle and the simulated users read them, movierec never does.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from pydantic import Field

from movierec.config import SettingsGroup
from movierec.vocab import (
    AGE_GROUPS,
    GENDERS,
    GENRE_WEIGHTS,
    GENRES,
    LANGUAGES,
    OCCUPATION_SHARES,
    OCCUPATIONS,
)
from movierec_sim.titles import generate_titles

DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)


class WorldConfig(SettingsGroup):
    """The world's size, seed and shape; the world options of `simulate`, `site` and `run`."""

    users: int = Field(2000, ge=1, le=10_000_000, description="users in the world")
    movies: int = Field(500, ge=1, le=200_000, description="movies in the world")
    seed: int = Field(0, description="seed of the world and its users")
    factors: int = Field(16, ge=2, description="latent taste factors")
    initial_user_share: float = Field(
        0.8, ge=0, le=1, description="share of users present on day 0 (the rest join later)"
    )
    initial_movie_share: float = Field(
        0.95, ge=0, le=1, description="share of movies out on day 0 (the rest come out later)"
    )
    user_join_days: float = Field(60.0, gt=0, description="days over which later users join")
    movie_release_days: float = Field(
        90.0, gt=0, description="days over which later movies come out"
    )
    mean_visits_per_day: float = Field(
        0.6, gt=0, description="visits a day of an average user (heavy-tailed around it)"
    )
    activity_sigma: float = Field(1.0, ge=0, description="lognormal spread of user activity")
    popularity_sigma: float = Field(1.3, ge=0, description="lognormal spread of popularity")
    taste_noise: float = Field(0.7, ge=0, description="personal taste beyond demographics")
    adult_share: float = Field(
        0.02, ge=0, le=1, description="share of movies the site's API marks adult"
    )
    reserved_accounts: int = Field(
        0,
        ge=0,
        le=1_000_000,
        description="user ids past the world's users that its API answers (the fake "
        "accounts of an injected campaign, movierec_sim/attacks.py)",
    )


class World:
    """Arrays indexed by user index (user id - 1) and movie index."""

    def __init__(self, config: WorldConfig) -> None:
        self.config = config
        root = np.random.SeedSequence(config.seed)
        users_seq, movies_seq, taste_seq = root.spawn(3)
        self._build_movies(np.random.default_rng(movies_seq))
        self._build_users(np.random.default_rng(users_seq))
        self._build_tastes(np.random.default_rng(taste_seq))
        # A stream of its own, so that marking movies adult changes no other draw of the
        # world (every world built before the flag existed is still the same world).
        adult_rng = np.random.default_rng([config.seed, 0xAD017])
        self.movie_adult = adult_rng.random(config.movies) < config.adult_share

    # ---- construction -------------------------------------------------------------------
    def _build_movies(self, rng: np.random.Generator) -> None:
        m = self.config.movies
        # Release years lean recent, like any streaming catalogue; a few have none.
        years = np.clip(2025 - rng.gamma(1.6, 14.0, m).astype(np.int64), 1915, 2025)
        years[rng.random(m) < 0.002] = 0
        released_later = rng.random(m) >= self.config.initial_movie_share
        years[released_later] = 2025
        self.movie_titles, self.movie_ids, self.movie_year = generate_titles(rng, years)
        self.movie_index: dict[str, int] = {mid: i for i, mid in enumerate(self.movie_ids)}
        self.movie_release_day = np.where(
            released_later, rng.uniform(0, self.config.movie_release_days, m), 0.0
        ).astype(np.float32)
        # 1-3 genres each, as a bit mask over GENRES.
        weights = np.asarray(GENRE_WEIGHTS) / sum(GENRE_WEIGHTS)
        counts = rng.choice([1, 2, 3], size=m, p=[0.35, 0.45, 0.20])
        masks = np.zeros(m, dtype=np.int64)
        for k in range(3):
            picks = rng.choice(len(GENRES), size=m, p=weights)
            masks |= np.where(counts > k, 1 << picks, 0)
        self.movie_genre_mask = masks
        self.movie_runtime = np.clip(rng.normal(104, 18, m), 62, 220).astype(np.int16)
        animation = (masks & (1 << 2)) != 0
        self.movie_runtime[animation] = (self.movie_runtime[animation] * 0.85).astype(np.int16)
        lang_share = np.asarray([s for _, _, s in LANGUAGES])
        self.movie_language = rng.choice(len(LANGUAGES), size=m, p=lang_share / lang_share.sum())
        # Heavy-tailed popularity; better movies are a little more popular.
        z = rng.standard_normal(m)
        self.movie_popularity = np.exp(self.config.popularity_sigma * z).astype(np.float32)
        self.movie_quality = (0.12 * z + rng.normal(0, 0.18, m)).astype(np.float32)
        self.movie_tmdb = rng.choice(np.arange(2, 900_000), size=m, replace=False)
        self.movie_imdb = rng.choice(np.arange(10_000, 9_999_999), size=m, replace=False)

    def _build_users(self, rng: np.random.Generator) -> None:
        n = self.config.users
        cfg = self.config
        # Ages: a mixture peaking in the late twenties, 13..80.
        ages = np.where(rng.random(n) < 0.75, rng.normal(30, 8, n), rng.normal(50, 12, n))
        self.user_age = np.clip(ages, 13, 80).astype(np.int16)
        self.user_gender = (rng.random(n) < 0.28).astype(np.int8)  # 0 = M, 1 = F
        occ = np.asarray(OCCUPATION_SHARES)
        self.user_occupation = rng.choice(len(OCCUPATIONS), size=n, p=occ / occ.sum()).astype(
            np.int8
        )
        mean_log = np.log(cfg.mean_visits_per_day) - cfg.activity_sigma**2 / 2
        self.user_activity = np.exp(rng.normal(mean_log, cfg.activity_sigma, n)).astype(np.float32)
        late = rng.random(n) >= cfg.initial_user_share
        self.user_join_day = np.where(late, rng.uniform(0, cfg.user_join_days, n), 0.0).astype(
            np.float32
        )

    def _build_tastes(self, rng: np.random.Generator) -> None:
        k = self.config.factors
        n_genres = len(GENRES)
        genre_vectors = rng.standard_normal((n_genres, k)).astype(np.float32)
        bits = ((self.movie_genre_mask[:, None] >> np.arange(n_genres)) & 1).astype(np.float32)
        genre_part = bits @ genre_vectors / np.maximum(bits.sum(1, keepdims=True), 1)
        movie_noise = rng.standard_normal((len(bits), k)).astype(np.float32)
        self.movie_vectors = (genre_part + 0.6 * movie_noise) / np.sqrt(k)
        # Demographics pull tastes toward shared directions; the rest is personal.
        age_vectors = rng.standard_normal((len(AGE_GROUPS), k)).astype(np.float32)
        gender_vectors = rng.standard_normal((len(GENDERS), k)).astype(np.float32)
        occ_vectors = rng.standard_normal((len(OCCUPATIONS), k)).astype(np.float32)
        groups = np.searchsorted([high for _, high, _ in AGE_GROUPS], self.user_age)
        demo = 0.6 * age_vectors[groups] + 0.5 * gender_vectors[self.user_gender]
        demo += 0.4 * occ_vectors[self.user_occupation]
        personal = rng.standard_normal((self.config.users, k)).astype(np.float32)
        self.user_taste = (demo + self.config.taste_noise * 1.6 * personal) / np.sqrt(k) * 2.24
        self.user_age_group = groups.astype(np.int8)

    # ---- queries --------------------------------------------------------------------------
    @property
    def n_users(self) -> int:
        return self.config.users

    @property
    def n_movies(self) -> int:
        return self.config.movies

    def affinity(self, users: np.ndarray, movies: np.ndarray) -> np.ndarray:
        """Hidden taste score of user index i for movie index j, elementwise."""
        return (
            np.einsum("ij,ij->i", self.user_taste[users], self.movie_vectors[movies])
            + (self.movie_quality[movies])
        )

    def user_json(self, user_id: int) -> dict | None:
        u = user_id - 1
        if self.n_users <= u < self.n_users + self.config.reserved_accounts:
            from movierec_sim.attacks import account_json  # fake accounts, rarely asked for

            return account_json(self, user_id)
        if not 0 <= u < self.n_users:
            return None
        return {
            "user_id": user_id,
            "age": int(self.user_age[u]),
            "occupation": OCCUPATIONS[self.user_occupation[u]],
            "gender": GENDERS[self.user_gender[u]],
        }

    def movie_genres(self, m: int) -> list[dict]:
        mask = int(self.movie_genre_mask[m])
        return [{"id": gid, "name": name} for b, (gid, name) in enumerate(GENRES) if mask >> b & 1]

    def movie_json(self, movie_id: str) -> dict | None:
        m = self.movie_index.get(movie_id)
        if m is None:
            return None
        from movierec_sim.movie_meta import (
            movie_document,
        )  # cold path: documents are built on demand

        return movie_document(self, m)

    def meta_rng(self, m: int) -> np.random.Generator:
        """A generator for movie m's cosmetic metadata, independent of every other draw."""
        return np.random.default_rng([self.config.seed, 7, m])
