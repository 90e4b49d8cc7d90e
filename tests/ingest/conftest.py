from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from movierec.stream import open_sink
from movierec_sim.api import ApiFaults, SiteApiServer
from movierec_sim.engine import SimConfig, Simulation
from movierec_sim.faults import FaultConfig
from movierec_sim.world import World, WorldConfig


@dataclass
class SimulatedLog:
    world: World
    ledger: dict
    path: Path

    @property
    def url(self) -> str:
        return f"file://{self.path}"

    def lines(self) -> list[bytes]:
        return self.path.read_bytes().split(b"\n")[:-1]


def simulate_into(url: str, world: World, events: int, faults: float, seed: int = 7) -> dict:
    sink = open_sink(url)
    try:
        config = SimConfig(
            seed=seed, events=events, faults=FaultConfig.build(faults), service="http://127.0.0.1:9"
        )
        return Simulation(world, config, sink).run()
    finally:
        sink.close()


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
