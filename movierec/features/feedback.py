"""Implicit feedback per (user, movie) from the store's aggregated events.

Confidence of a (user, movie) pair, before recency:
    share of the movie watched (distinct minutes / runtime, at least 0.1 for any watch),
    + 0.5 for a 5-star rating, + 0.25 for 4 stars, x 0.3 for 1-2 stars (watched, disliked),
    or rating / scale alone when the user rated without watching (a ratings-only stream).
Recency multiplies it by 2^(-age / half-life): what users did lately says more about what
they want next. Before recency, trust (features/trust.py) counts the pairs of unproven
accounts less and caps them per movie, so a crowd of new accounts cannot push a movie.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import scipy.sparse as sp
from pydantic import Field

from movierec.catalog.reader import Catalogue
from movierec.config import RatingScale, SettingsGroup, group, option
from movierec.features.trust import TrustConfig, trust_factors
from movierec.ids import find_in_sorted
from movierec.models.base import TrainingData
from movierec.times import DAY_NS

DEFAULT_RUNTIME = 100  # minutes, for movies the catalogue has no runtime for


class FeedbackConfig(SettingsGroup):
    """How events become confidence: the training's `feedback` settings."""

    recency_half_life_days: float = Field(
        60.0,
        gt=0,
        description="recency half-life of implicit feedback, in days",
        json_schema_extra=option("half_life_days"),
    )
    min_watch_share: float = Field(
        0.1, gt=0, le=1, description="share of a movie any watch counts for at least"
    )
    rating_scale: RatingScale = Field(5, description="stars on the site's rating scale")
    trust: TrustConfig = Field(
        default_factory=TrustConfig,
        description="how much unproven accounts count (features/trust.py)",
        json_schema_extra=group("trust_"),
    )


def build(
    pairs: pa.Table, catalogue: Catalogue, cut_ns: int, config: FeedbackConfig | None = None
) -> TrainingData:
    """TrainingData from (user, movie) pairs; the item universe also holds every movie the
    catalogue knows, so new movies without interactions can still be recommended."""
    cfg = config or FeedbackConfig()
    users = pairs.column("user_id").to_numpy().astype(np.int64)
    minutes = pairs.column("minutes").to_numpy().astype(np.float64)
    last_minute = pairs.column("last_minute").to_numpy().astype(np.float64)
    rating = pairs.column("rating").fill_null(0).to_numpy().astype(np.float64)
    last_ns = pairs.column("last_ns").to_numpy().astype(np.int64)
    distinct, codes = encode_movies(pairs.column("movie_id"))
    item_ids = np.unique(np.concatenate([distinct, catalogue.movie_ids]).astype(str)).astype(object)
    cols, _ = columns_of(distinct, codes, item_ids)
    user_ids, rows = np.unique(users, return_inverse=True)
    runtime = _runtimes(item_ids, cols, last_minute, catalogue)
    weight = _confidence(minutes, runtime[cols], rating, cfg)
    if cfg.trust.enabled:  # before recency: the cap is on what was watched, not its age
        first_ns = pairs.column("first_ns").to_numpy().astype(np.int64)
        weight *= trust_factors(users, cols, first_ns, weight, cfg.trust)
    age_days = np.maximum(cut_ns - last_ns, 0) / DAY_NS
    weight *= np.exp2(-age_days / cfg.recency_half_life_days)
    matrix = sp.csr_matrix(
        (weight.astype(np.float32), (rows, cols)), shape=(len(user_ids), len(item_ids))
    )
    matrix.sum_duplicates()
    matrix.sort_indices()
    side = _side_information(user_ids, item_ids, catalogue)
    return TrainingData(
        matrix=matrix,
        user_ids=user_ids,
        item_ids=item_ids,
        now_ns=cut_ns,
        event_user=rows.astype(np.int32),
        event_item=cols,
        event_time_ns=last_ns,
        event_weight=weight.astype(np.float32),
        **side,
    )


def encode_movies(column: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct movie ids, the code of each row): millions of rows, thousands of ids."""
    encoded = pc.dictionary_encode(column.cast(pa.string())).combine_chunks()
    distinct = np.asarray(encoded.dictionary.to_pylist(), dtype=object)
    return distinct, encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)


def columns_of(
    distinct: np.ndarray, codes: np.ndarray, item_ids: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(column of each row in item_ids, whether item_ids has it) for encoded movie ids."""
    at, found = find_in_sorted(item_ids.astype(str), distinct.astype(str))
    return at[codes].astype(np.int32), found[codes]


def _runtimes(
    item_ids: np.ndarray, cols: np.ndarray, last_minute: np.ndarray, catalogue: Catalogue
) -> np.ndarray:
    """Runtime per item: the catalogue's, else one past the last minute anyone watched,
    else a default."""
    runtime = np.zeros(len(item_ids), dtype=np.float64)
    at, known = find_in_sorted(item_ids.astype(str), catalogue.movie_ids.astype(str))
    runtime[at[known]] = catalogue.movie_runtime[known]
    seen = np.full(len(item_ids), -1.0)
    np.maximum.at(seen, cols, last_minute)
    guess = np.where(seen >= 0, seen + 1, DEFAULT_RUNTIME)
    return np.maximum(np.where(runtime > 0, runtime, guess), 1.0)


def _confidence(
    minutes: np.ndarray, runtime: np.ndarray, rating: np.ndarray, cfg: FeedbackConfig
) -> np.ndarray:
    watched = minutes > 0
    share = np.where(watched, np.clip(minutes / runtime, cfg.min_watch_share, 1.0), 0.0)
    stars = rating * (5.0 / cfg.rating_scale)  # on a 5-star scale
    bonus = np.select([stars >= 4.5, stars >= 3.5], [0.5, 0.25], 0.0)
    disliked = (stars > 0) & (stars < 2.5)
    weight = np.where(disliked, share * 0.3, share + np.where(watched, bonus, 0.0))
    rated_only = ~watched & (stars > 0)
    return np.where(rated_only, stars / 5.0, weight)


def _side_information(
    user_ids: np.ndarray, item_ids: np.ndarray, catalogue: Catalogue
) -> dict[str, np.ndarray]:
    def lookup(ids: np.ndarray, keys: np.ndarray, values: np.ndarray, fill: int) -> np.ndarray:
        out = np.full(len(ids), fill, dtype=values.dtype)
        at, hit = find_in_sorted(keys, ids)
        out[hit] = values[at[hit]]
        return out

    order = np.argsort(catalogue.movie_ids.astype(str))
    movie_keys = catalogue.movie_ids.astype(str)[order]
    items = item_ids.astype(str)
    return {
        "user_age": lookup(user_ids, catalogue.user_ids, catalogue.user_age, -1),
        "user_gender": lookup(user_ids, catalogue.user_ids, catalogue.user_gender, -1),
        "user_occupation": lookup(user_ids, catalogue.user_ids, catalogue.user_occupation, -1),
        "item_genres": lookup(items, movie_keys, catalogue.movie_genres[order], 0),
        "item_year": lookup(items, movie_keys, catalogue.movie_year[order], 0),
    }
