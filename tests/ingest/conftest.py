from __future__ import annotations

from collections.abc import Iterator

import pytest

from movierec_sim.api import ApiFaults, SiteApiServer
from movierec_sim.world import World, WorldConfig
from tests.support.simulated import SimulatedLog, simulate_into


@pytest.fixture(scope="session")
def world() -> World:
    return World(WorldConfig(users=2000, movies=500, seed=7))


@pytest.fixture(scope="session")
def dirty_log(world: World, tmp_path_factory: pytest.TempPathFactory) -> SimulatedLog:
    """200,000 lines with 5% dirt of every kind, and the ledger that says which."""
    path = tmp_path_factory.mktemp("log") / "log"
    ledger = simulate_into(f"file://{path}", world, 200_000, 0.05)
    return SimulatedLog(world, ledger, path)


@pytest.fixture
def site_api(world: World) -> Iterator[SiteApiServer]:
    with SiteApiServer(world, port=0, faults=ApiFaults(), control=False) as api:
        yield api
