from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from movierec.ingest.runner import IngestConfig, Ingestor
from movierec.sim.api import SiteApiServer
from movierec.sim.world import World, WorldConfig
from tests.ingest.conftest import simulate_into


@dataclass
class SimulatedStore:
    world: World
    path: Path
    ledger: dict


@pytest.fixture(scope="session")
def simulated_store(tmp_path_factory: pytest.TempPathFactory) -> SimulatedStore:
    """About a month of a 2,000-user site, ingested with its catalogue."""
    root = tmp_path_factory.mktemp("site")
    world = World(WorldConfig(users=2000, movies=500, seed=7))
    ledger = simulate_into(f"file://{root / 'log'}", world, 1_200_000, 0.01)
    with SiteApiServer(world, port=0) as api:
        Ingestor(
            IngestConfig(
                source=f"file://{root / 'log'}",
                store=str(root / "store"),
                api=api.url,
                api_rate_limit=5000.0,
                catalogue_wait=60.0,
            )
        ).run()
    return SimulatedStore(world, root / "store", ledger)
