"""Attacks on the model from inside the site: a shilling campaign.

A campaign opens `accounts` new accounts that push one target movie: each arrives at a
uniform moment of [start, start + duration), watches the target to its end and rates it
the top of the scale, and, to look like a person, also watches a few popular movies
(`camouflage`, drawn from the world's `popular_pool` most popular), in a random order,
a few minutes apart, one watch line a minute as every viewer's, and rates some of them
well. The campaign's lines are queued in the simulation's writer with their timestamps,
so they land in the same log among the real users' lines (and take the same dirt).

The fake accounts are user ids past the world's users, which the world reserves
(`WorldConfig.reserved_accounts`) so its API answers them like any user; they never
visit on their own, and every draw of a campaign comes from its own stream, so the
real users do exactly what they would without it.

    campaign = ShillingCampaign(target="some+movie+2011", accounts=50, start_day=7)
    inject(simulation, campaign)  # before the run reaches campaign.start_day
    ledger = simulation.run()     # ledger["attacks"]: accounts, start, end, lines
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field

from movierec.config import SettingsGroup
from movierec.logformat.writer import NANOS
from movierec.vocab import GENDERS, OCCUPATION_SHARES, OCCUPATIONS
from movierec_sim.faults import RATE, WATCH

if TYPE_CHECKING:
    from movierec_sim.engine import Simulation
    from movierec_sim.world import World

DAY = 86_400
_STREAM = 0x5A111  # the seed word of the campaigns' own random streams


@dataclass(frozen=True)
class ShillingCampaign:
    """Who pushes what, when, and how they hide."""

    target: str  # the movie id pushed
    accounts: int = 50
    start_day: float = 7.0  # simulated days since the run's start
    duration_hours: float = 6.0  # accounts arrive uniformly over this
    camouflage: int = 3  # popular movies each account also watches
    popular_pool: int = 20  # camouflage is drawn from the world's N most popular movies
    seed: int = 0

    def __post_init__(self) -> None:
        if self.accounts < 1:
            raise ValueError(f"a campaign needs at least one account, got {self.accounts}")
        if self.start_day < 0 or self.duration_hours <= 0:
            raise ValueError("a campaign starts at a day >= 0 and lasts more than 0 hours")
        if self.camouflage < 0 or self.popular_pool < self.camouflage:
            raise ValueError("camouflage must be >= 0 and at most popular_pool")


class ShillingSettings(SettingsGroup):
    """`movierec simulate`'s shilling campaign (--shill-target and friends)."""

    target: str | None = Field(
        None, description="movie id a shilling campaign pushes (none: no attack)"
    )
    accounts: int = Field(50, ge=1, le=100_000, description="fake accounts of the campaign")
    at: float = Field(7.0, ge=0, description="simulated day the campaign starts")
    hours: float = Field(6.0, gt=0, description="hours over which the fake accounts arrive")
    camouflage: int = Field(
        3, ge=0, le=50, description="popular movies each fake account also watches"
    )

    def campaign(self, seed: int) -> ShillingCampaign | None:
        if self.target is None:
            return None
        return ShillingCampaign(
            target=self.target,
            accounts=self.accounts,
            start_day=self.at,
            duration_hours=self.hours,
            camouflage=self.camouflage,
            popular_pool=max(20, self.camouflage),
            seed=seed,
        )


@dataclass
class _Lines:
    """A campaign's events, as the writer takes them."""

    watch_time: np.ndarray  # simulated seconds
    watch_user: np.ndarray  # user ids
    watch_movie: np.ndarray  # movie indices
    watch_minute: np.ndarray
    rate_time: np.ndarray
    rate_user: np.ndarray
    rate_movie: np.ndarray
    rate_stars: np.ndarray


def check_campaign(world: World, campaign: ShillingCampaign, days: float | None = None) -> None:
    """ValueError unless the campaign can run in this world (its target a movie out by
    its start, enough reserved ids) and, for a run of `days`, start within it."""
    target = world.movie_index.get(campaign.target)
    if target is None:
        raise ValueError(f"shilling target {campaign.target!r} is no movie of this world")
    if world.movie_release_day[target] > campaign.start_day:
        raise ValueError(
            f"shilling target {campaign.target} comes out on day "
            f"{world.movie_release_day[target]:.1f}, after the campaign's start"
        )
    if campaign.accounts > world.config.reserved_accounts:
        raise ValueError(
            f"the world reserves {world.config.reserved_accounts} account ids past its users; "
            f"the campaign needs {campaign.accounts} (WorldConfig(reserved_accounts=...))"
        )
    if days is not None and campaign.start_day >= days:
        raise ValueError(f"the run ends on day {days:g}, before the campaign starts")


def inject(sim: Simulation, campaign: ShillingCampaign) -> dict[str, Any]:
    """Queue the campaign's lines in the simulation's writer and record it in the ledger
    (also returned). The accounts are the next unused ids of the world's reserved range.
    Raises ValueError when `check_campaign` does, when the reserved ids left are too few,
    or when the simulation has already passed the start."""
    world, cfg = sim.world, sim.config
    check_campaign(world, campaign, cfg.days)
    target = world.movie_index[campaign.target]
    start = int(campaign.start_day * DAY)
    if start < sim.t:
        raise ValueError(f"the simulation is already at second {sim.t}, past the start {start}")
    used = sum(len(a["accounts"]) for a in sim.ledger.attacks)
    first = world.n_users + 1 + used
    if used + campaign.accounts > world.config.reserved_accounts:
        raise ValueError(
            f"{used} of the world's {world.config.reserved_accounts} reserved account ids "
            f"are taken; the campaign needs {campaign.accounts} more"
        )
    accounts = np.arange(first, first + campaign.accounts, dtype=np.int64)
    rng = np.random.default_rng([cfg.seed, _STREAM, campaign.seed, used])
    lines = _campaign_lines(world, campaign, target, accounts, start, rng, cfg.rating_scale)
    for times, kind, users, movies, values in (
        (lines.watch_time, WATCH, lines.watch_user, lines.watch_movie, lines.watch_minute),
        (lines.rate_time, RATE, lines.rate_user, lines.rate_movie, lines.rate_stars),
    ):
        sim.writer.add(times, (sim.epoch + times) * NANOS, kind, users, movies, values)
    end = int(max(lines.watch_time.max(), lines.rate_time.max())) + 1
    on_target = lines.watch_movie == target
    record = {
        "kind": "shilling",
        "target": campaign.target,
        "accounts": accounts.tolist(),
        "start": (cfg.start + timedelta(seconds=start)).isoformat(),
        "end": (cfg.start + timedelta(seconds=end)).isoformat(),
        "start_seconds": start,
        "end_seconds": end,
        # Lines queued; all reach the log when the run goes past `end` and no events limit
        # stops it first (some take the run's dirt, like every line).
        "lines": {
            "watch": len(lines.watch_time),
            "rate": len(lines.rate_time),
            "target_watch": int(on_target.sum()),
            "target_rate": int((lines.rate_movie == target).sum()),
        },
        "settings": asdict(campaign),
    }
    sim.ledger.attacks.append(record)
    return record


def _campaign_lines(
    world: World,
    campaign: ShillingCampaign,
    target: int,
    accounts: np.ndarray,
    start: int,
    rng: np.random.Generator,
    scale: int,
) -> _Lines:
    pool = _popular(world, target, campaign.popular_pool, campaign.start_day)
    arrivals = start + rng.uniform(0, campaign.duration_hours * 3600, len(accounts)).astype(
        np.int64
    )
    sessions: list[tuple[int, int, int, int]] = []  # (start second, user, movie, minutes)
    ratings: list[tuple[int, int, int, int]] = []  # (second, user, movie, stars)
    for user, at in zip(accounts.tolist(), arrivals.tolist(), strict=True):
        picks = rng.choice(pool, size=min(campaign.camouflage, len(pool)), replace=False)
        order = rng.permutation(np.concatenate([[target], picks]).astype(np.int64))
        clock = at
        for movie in order.tolist():
            runtime = int(world.movie_runtime[movie])
            full = movie == target or rng.random() < 0.5
            minutes = runtime if full else max(1, int(np.ceil(runtime * rng.uniform(0.3, 0.9))))
            sessions.append((clock, user, movie, minutes))
            clock += 60 * minutes
            if movie == target:
                stars = scale
            elif rng.random() < 0.5:
                stars = int(rng.integers(scale - 1, scale + 1))
            else:
                stars = 0
            if stars:
                clock += int(rng.integers(10, 120))
                ratings.append((clock, user, movie, stars))
            clock += int(rng.integers(60, 600))  # browsing before the next one
    starts, users, movies, lengths = (
        np.array(c, dtype=np.int64) for c in zip(*sessions, strict=True)
    )
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    minute = np.arange(int(lengths.sum()), dtype=np.int64) - offsets
    rated = np.array(ratings, dtype=np.int64).reshape(-1, 4)
    return _Lines(
        watch_time=np.repeat(starts, lengths) + 60 * minute,
        watch_user=np.repeat(users, lengths),
        watch_movie=np.repeat(movies, lengths),
        watch_minute=minute,
        rate_time=rated[:, 0],
        rate_user=rated[:, 1],
        rate_movie=rated[:, 2],
        rate_stars=rated[:, 3],
    )


def _popular(world: World, target: int, size: int, day: float) -> np.ndarray:
    """The `size` most popular movies out by `day`, the target excepted."""
    out = (world.movie_release_day <= day) & (np.arange(world.n_movies) != target)
    candidates = np.flatnonzero(out)
    order = np.argsort(-world.movie_popularity[candidates], kind="stable")
    return candidates[order[:size]]


def account_json(world: World, user_id: int) -> dict[str, Any]:
    """The API's answer for a reserved account: demographics drawn from the account's own
    stream (so a fake account looks like anyone, and the same each time it is asked)."""
    rng = np.random.default_rng([world.config.seed, _STREAM, user_id])
    age = rng.normal(30, 8) if rng.random() < 0.75 else rng.normal(50, 12)
    shares = np.asarray(OCCUPATION_SHARES, dtype=np.float64)
    occupation = int(rng.choice(len(OCCUPATIONS), p=shares / shares.sum()))
    return {
        "user_id": user_id,
        "age": int(np.clip(age, 13, 80)),
        "occupation": OCCUPATIONS[occupation],
        "gender": GENDERS[int(rng.random() < 0.28)],
    }
