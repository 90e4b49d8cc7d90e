"""A simulated site with (or without) a shilling campaign, ingested into a store, and the
models fitted on it: shared by tests/features/test_trust.py and bench/bench_shilling.py.

    site = shilled_site(root, WorldConfig(users=2000, movies=500, seed=7), days=14,
                        campaign=lambda world: ShillingCampaign(long_tail(world), start_day=10))
    model, train = fit_at(site.store, site.day_ns(12), "itemknn", trust=True)
    exposure = movie_exposure(model, train, site.target, real_users(site))
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from movierec.features.feedback import FeedbackConfig
from movierec.features.interactions import training_data
from movierec.features.trust import TrustConfig
from movierec.ingest.runner import IngestConfig, Ingestor
from movierec.models.base import Recommender, TrainingData
from movierec.models.kinds import fit
from movierec.store.events import EventStore
from movierec.stream.locallog import LocalLogSink
from movierec_sim.api import SiteApiServer
from movierec_sim.attacks import ShillingCampaign, inject
from movierec_sim.engine import SimConfig, Simulation
from movierec_sim.oracle import Oracle
from movierec_sim.population import Population
from movierec_sim.world import World, WorldConfig

DAY_NS = 86_400 * 10**9
# The tests' small site: five days of 500 users and 300 movies, a campaign of 50 accounts
# arriving over 6 hours from day 3.5 on a long-tail movie (over by about day 4.1).
SMALL_WORLD = WorldConfig(users=500, movies=300, seed=7)
SMALL_DAYS = 5.0
SMALL_ATTACK_DAY = 3.5
SMALL_AFTER_DAY = 4.5


@dataclass
class ShilledSite:
    world: World
    ledger: dict[str, Any]
    log: Path
    store: Path
    target: str | None  # the campaign's target (None: a clean site)
    start_ns: int  # the simulation's start
    # The simulated users as they were at chosen days (their drifted tastes, what they
    # remember watching): the oracle judges a list shown to them then.
    populations: dict[float, Population] = field(default_factory=dict)

    def day_ns(self, day: float) -> int:
        return self.start_ns + int(day * DAY_NS)

    @property
    def campaign(self) -> dict[str, Any] | None:
        return self.ledger["attacks"][0] if self.ledger["attacks"] else None


def long_tail(world: World, share: float = 0.2) -> str:
    """A movie out from day 0 at `share` of the way up the popularity ranking."""
    out = np.flatnonzero(world.movie_release_day == 0)
    ranked = out[np.argsort(world.movie_popularity[out], kind="stable")]
    return str(world.movie_ids[ranked[int(share * (len(ranked) - 1))]])


def shilled_site(
    root: Path,
    world_config: WorldConfig,
    days: float,
    campaign: Callable[[World], ShillingCampaign] | None,
    seed: int = 7,
    snapshot_days: Iterable[float] = (),
) -> ShilledSite:
    """Simulate `days` of the world (the campaign `campaign(world)` injected), clean lines
    only, keeping the population at each of `snapshot_days`, then ingest the log with the
    site's API answering the catalogue."""
    root.mkdir(parents=True, exist_ok=True)
    reserved = max(world_config.reserved_accounts, 1000)
    world = World(world_config.model_copy(update={"reserved_accounts": reserved}))
    config = SimConfig(seed=seed, days=days, service="http://127.0.0.1:9")
    sink = LocalLogSink(root / "log")
    target = None
    try:
        sim = Simulation(world, config, sink)
        if campaign is not None:
            chosen = campaign(world)
            inject(sim, chosen)
            target = chosen.target
        populations = {}
        done = 0.0
        for day in sorted(set(snapshot_days)):
            sim.advance(day - done)
            populations[day] = _frozen(sim.population)
            done = day
        sim.advance(days - done)
        sim.close()
        ledger = sim.ledger_json()
    finally:
        sink.close()
    with SiteApiServer(world, port=0) as api:
        Ingestor(
            IngestConfig(
                source=f"file://{root / 'log'}",
                store=str(root / "store"),
                api=api.url,
                api_rate_limit=20000.0,
                catalogue_wait=60.0,
            )
        ).run()
    start_ns = int(config.start.timestamp()) * 10**9
    return ShilledSite(world, ledger, root / "log", root / "store", target, start_ns, populations)


def _frozen(population: Population) -> Population:
    """A copy of the population whose state later days do not change."""
    kept = copy.copy(population)
    for name in ("taste", "history", "history_next", "busy_until", "released"):
        setattr(kept, name, getattr(population, name).copy())
    return kept


def expected_conversion(
    site: ShilledSite, day: float, model: Recommender, users: np.ndarray
) -> float:
    """The mean probability that the users, as they were on `day`, pick a movie from the
    model's top-20 list (the simulator's own behaviour, judged by its oracle)."""
    population = site.populations[day]
    lists = model.recommend(users)
    ids = model.item_ids
    index = site.world.movie_index
    movies = np.array(
        [[index.get(str(ids[i]), -1) if i >= 0 else -1 for i in row] for row in lists],
        dtype=np.int64,
    ).reshape(len(users), -1)
    oracle = Oracle(population, population.behaviour)
    return float(oracle.score_lists(users - 1, movies).mean()) if len(users) else float("nan")


def small_shilled_site(root: Path) -> ShilledSite:
    """The tests' small attacked site (SMALL_*), simulated and ingested in a few seconds."""
    return shilled_site(
        root,
        SMALL_WORLD,
        SMALL_DAYS,
        lambda world: ShillingCampaign(long_tail(world), accounts=50, start_day=SMALL_ATTACK_DAY),
    )


def feedback(trust: bool) -> FeedbackConfig:
    return FeedbackConfig(trust=TrustConfig(enabled=trust))


def fit_at(
    store: Path, cut_ns: int, kind: str, trust: bool, params: dict[str, Any] | None = None
) -> tuple[Recommender, TrainingData]:
    """A model of `kind` fitted on the store's events before the cut."""
    train = training_data(EventStore(store), cut_ns, feedback(trust))
    return fit(kind, params or {}, train, 0), train


def real_users(world: World, train: TrainingData) -> np.ndarray:
    """The training data's users that are the world's own (not a campaign's accounts)."""
    return train.user_ids[train.user_ids <= world.n_users]
