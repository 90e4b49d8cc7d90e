"""Trust: what unproven accounts may teach a model, so that a crowd of new accounts
cannot push a movie into everybody's lists (a shilling campaign, movierec/audit/attacks.py).

A (user, movie) pair is unproven when, at its first event, its account was younger than
`new_days` (since the account's first event) or had begun fewer than `min_movies` other
movies: the signal of an account that has not yet behaved like a viewer for a while.
Unproven pairs count `unproven_weight` of their confidence, and on each movie, per
period of `cap_days`, unproven pairs together count at most

    max(fresh_cap, fresh_cap_share x the proven pairs' confidence on the movie then)

(scaled down together when they would count more): a real newcomer's watch still
counts, and many newcomers on a movie everyone watches barely reach the cap, but fifty
accounts on a movie nobody else watches count as two viewers.

Accounts whose first event lies within `new_days` of the data's first event are proven:
they were on the site before the data begins (a store starts on some day; its first
users are not new). A training window that starts later (`start_ns`) makes its first
days look old to this rule too.

A user's own lists hardly change (a neighbourhood model ranks by the ratios of a user's
weights, and a new account's pairs are all scaled alike); what changes is what unproven
accounts teach the model about movies, for everybody else.

On by default. bench/bench_shilling.py (2,000 users x 500 movies, 14 days, 50 accounts
pushing a long-tail movie on day 10, five seeds): without trust the target reaches 18% of
the other users' top-20 lists under rp3beta and all of them under popularity (every
model's fallback for users it does not know); with it, 0.01% and none, as before the
attack. On the same sites without an attack it costs nothing measurable: NDCG@20 -0.001
(itemknn, -0.4%), +0.0002 (rp3beta), -0.0003 (popularity), and the simulator's expected
conversion of the lists -0.0006 at most. (A weight of 0.25 cost itemknn twice as much
and protected no better; the weight without the cap left the target in 3% of rp3beta's
lists.)
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from movierec.config import SettingsGroup, option
from movierec.times import DAY_NS


class TrustConfig(SettingsGroup):
    """How much unproven accounts count: the feedback's `trust` settings."""

    enabled: bool = Field(
        True,
        description="count unproven accounts' events less and cap them per movie",
        json_schema_extra=option("trust"),
    )
    new_days: float = Field(
        3.0, ge=0, description="an account's events in its first days are unproven"
    )
    min_movies: int = Field(
        5, ge=0, description="and so are its first movies, until it has begun this many"
    )
    unproven_weight: float = Field(
        0.5, gt=0, le=1, description="share of its confidence an unproven pair counts"
    )
    fresh_cap: float = Field(
        2.0, gt=0, description="most confidence unproven pairs give one movie per period"
    )
    fresh_cap_share: float = Field(
        0.5,
        ge=0,
        description="or this share of the proven pairs' confidence on the movie then, if more",
    )
    cap_days: float = Field(1.0, gt=0, description="days per period of the cap")


def unproven_pairs(users: np.ndarray, first_ns: np.ndarray, config: TrustConfig) -> np.ndarray:
    """Whether each (user, movie) pair, given its user and its first event, is unproven."""
    n = len(users)
    if n == 0:
        return np.zeros(0, dtype=bool)
    users = np.asarray(users, dtype=np.int64)
    first_ns = np.asarray(first_ns, dtype=np.int64)
    order = np.lexsort((first_ns, users))
    sorted_users = users[order]
    starts = np.ones(n, dtype=bool)
    starts[1:] = sorted_users[1:] != sorted_users[:-1]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    # Movies the account had begun before this pair (pairs begun at the same moment share
    # one count: neither of them is more proven than the other).
    sorted_first = first_ns[order]
    account_first = sorted_first[group_start]
    tie_start = np.ones(n, dtype=bool)
    tie_start[1:] = starts[1:] | (sorted_first[1:] != sorted_first[:-1])
    prior = np.maximum.accumulate(np.where(tie_start, np.arange(n), 0)) - group_start
    new_ns = int(config.new_days * DAY_NS)
    predates = account_first < int(first_ns.min()) + new_ns
    young = sorted_first - account_first < new_ns
    unproven = ~predates & (young | (prior < config.min_movies))
    out = np.empty(n, dtype=bool)
    out[order] = unproven
    return out


def trust_factors(
    users: np.ndarray,
    items: np.ndarray,
    first_ns: np.ndarray,
    confidence: np.ndarray,
    config: TrustConfig,
) -> np.ndarray:
    """The factor (0, 1] each pair's confidence is multiplied by; all ones when disabled."""
    n = len(users)
    factor = np.ones(n, dtype=np.float64)
    if not config.enabled or n == 0:
        return factor
    unproven = unproven_pairs(users, first_ns, config)
    factor[unproven] = config.unproven_weight
    first_ns = np.asarray(first_ns, dtype=np.int64)
    period = (first_ns - first_ns.min()) // max(int(config.cap_days * DAY_NS), 1)
    # One cell per (movie, period); only cells with unproven pairs matter.
    cell_keys, cell = np.unique(
        np.asarray(items, dtype=np.int64) * (int(period.max()) + 1) + period, return_inverse=True
    )
    weighted = np.asarray(confidence, dtype=np.float64) * factor
    fresh = np.bincount(cell, weights=np.where(unproven, weighted, 0.0), minlength=len(cell_keys))
    proven = np.bincount(cell, weights=np.where(unproven, 0.0, weighted), minlength=len(cell_keys))
    cap = np.maximum(config.fresh_cap, config.fresh_cap_share * proven)
    scale = np.divide(cap, fresh, out=np.ones_like(fresh), where=fresh > cap)
    factor[unproven] *= scale[cell[unproven]]
    return factor
