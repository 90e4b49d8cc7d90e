"""Interactions in bulk, straight from the world's tastes, for measuring training at full
size: twenty million (user, movie) pairs would be over a billion watch lines through the
log. The pairs have the shape `movierec.features.interactions.interactions` returns, and are chosen
the way simulated users choose on their own (popularity-weighted candidates, taste
decides), so a model learns the same structure it would from the stream."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from movierec_sim.behaviour import Behaviour, rating, sigmoid, watch_minutes
from movierec_sim.world import World

DAY_NS = 86_400 * 1_000_000_000
_CHUNK = 50_000  # interactions drawn at once (bounds memory: chunk x candidates x factors)


def interactions(
    world: World,
    count: int,
    days: float,
    start_ns: int,
    seed: int = 0,
    candidates: int = 64,
    progress: Callable[[dict], None] | None = None,
) -> pa.Table:
    """About `count` distinct (user, movie) pairs over `days`, with watch minutes, ratings
    and times."""
    b = Behaviour()
    rng = np.random.default_rng(seed)
    weights = world.movie_popularity.astype(np.float64) ** b.candidate_popularity
    cumulative = np.cumsum(weights)
    activity = np.cumsum(world.user_activity.astype(np.float64))
    parts: list[pa.Table] = []
    drawn = 0
    while drawn < count:
        n = min(_CHUNK, count - drawn)
        users = np.searchsorted(activity, rng.random(n) * activity[-1])
        pool = np.searchsorted(cumulative, rng.random((n, candidates)) * cumulative[-1])
        pool = np.minimum(pool, world.n_movies - 1)
        affinity = np.einsum("nf,nkf->nk", world.user_taste[users], world.movie_vectors[pool])
        affinity += world.movie_quality[pool]
        pick = np.argmax(b.own_taste_weight * affinity + rng.gumbel(size=affinity.shape), axis=1)
        movies = pool[np.arange(n), pick]
        liked = affinity[np.arange(n), pick]
        runtime = world.movie_runtime[movies].astype(np.int64)
        minutes = watch_minutes(b, liked, runtime, rng.random(n), rng.beta(1.2, 2.5, n))
        stars = rating(b, liked, rng.standard_normal(n))
        rated = rng.random(n) < b.rate_base + b.rate_strong * np.abs(2 * sigmoid(liked) - 1)
        times = start_ns + (rng.random(n) * days * DAY_NS).astype(np.int64)
        parts.append(
            pa.table(
                {
                    "user_id": (users + 1).astype(np.int32),
                    "movie_id": movies,
                    "minutes": minutes,
                    "last_minute": minutes - 1,
                    "rating": pa.array(np.where(rated, stars, 0), pa.int8()).cast(pa.int8()),
                    "first_ns": times,
                    "last_ns": times + minutes * 60_000_000_000,
                }
            )
        )
        drawn += n
        if progress is not None:
            progress({"interactions": drawn})
    table = pa.concat_tables(parts)
    # One row per (user, movie): the latest draw wins (a rewatch is one pair).
    keys = table.column("user_id").to_numpy().astype(np.int64) * world.n_movies
    keys += table.column("movie_id").to_numpy()
    _, last = np.unique(keys[::-1], return_index=True)
    table = table.take(np.sort(len(keys) - 1 - last))
    codes = table.column("movie_id").combine_chunks()
    movie = pa.DictionaryArray.from_arrays(codes.cast(pa.int32()), pa.array(world.movie_ids))
    stars = table.column("rating")
    no_rating = pc.equal(stars, 0)
    table = table.set_column(1, "movie_id", movie)
    return table.set_column(4, "rating", pc.if_else(no_rating, pa.scalar(None, pa.int8()), stars))
