"""A simulated site's output as the tests share it: a log with its ledger (what the
simulator says it wrote, line by line) and a store ingested from one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from movierec.stream import open_sink
from movierec_sim.engine import SimConfig, Simulation
from movierec_sim.faults import FaultConfig
from movierec_sim.world import World


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


@dataclass
class SimulatedStore:
    world: World
    path: Path
    ledger: dict
    log: Path


def simulate_into(url: str, world: World, events: int, faults: float, seed: int = 7) -> dict:
    """Write `events` lines of the simulated site (a `faults` share of dirt) to the stream
    at `url`; returns the ledger. The site's calls to a recommender go nowhere (port 9)."""
    sink = open_sink(url)
    try:
        config = SimConfig(
            seed=seed, events=events, faults=FaultConfig.build(faults), service="http://127.0.0.1:9"
        )
        return Simulation(world, config, sink).run()
    finally:
        sink.close()


def assert_matches_ledger(report: dict, ledger: dict) -> None:
    """An ingestion report against the ledger: every clean line stored once, every
    duplicate dropped, every other fault rejected, nothing left waiting for the catalogue."""
    expected = ledger["expected_ingest"]
    assert report["lines_read"] == expected["lines_read"]
    assert report["stored"] == ledger["clean"]
    assert report["duplicates"] == ledger["faults"]["duplicate"]
    assert sum(report["rejected"].values()) == expected["rejected"]
    assert report["rejected"]["unknown_movie"] == ledger["faults"]["unknown_movie"]
    assert report["rejected"]["future_timestamp"] == ledger["faults"]["future_timestamp"]
    assert report["provisional"]["events"] == 0
