"""Fixtures shared by the whole test suite."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import settings

from movierec_sim.world import World, WorldConfig
from tests.support.simulated import SimulatedStore, simulate_into
from tests.support.simulated_run import SiteRun, run_site

if TYPE_CHECKING:
    from tests.support.shilling import ShilledSite

# Property tests judge results, not time: a per-example deadline fails them when the
# machine is busy (CI's two cores ran one example 300 ms that takes 27 ms alone). Speed is
# measured in bench/, never in a test.
settings.register_profile("movierec", deadline=None)
settings.load_profile("movierec")


@pytest.fixture(scope="session")
def kafka_bootstrap() -> str:
    """The broker started by `scripts/kafka.py start`, from MOVIEREC_KAFKA_BOOTSTRAP.

    Skipped without it on a developer machine, but in CI a missing broker is an error:
    Kafka tests that silently skip would make a green build mean nothing.
    """
    bootstrap = os.environ.get("MOVIEREC_KAFKA_BOOTSTRAP", "").strip()
    if bootstrap:
        return bootstrap
    message = (
        "MOVIEREC_KAFKA_BOOTSTRAP is not set "
        "(start a broker: .venv/bin/python scripts/kafka.py start)"
    )
    if os.environ.get("CI"):
        pytest.fail(f"{message}; Kafka tests must run in CI", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def simulated_store(tmp_path_factory: pytest.TempPathFactory) -> SimulatedStore:
    """About a month of a 2,000-user site, ingested with its catalogue (shared by the
    training, evaluation and serving tests)."""
    from movierec.ingest.runner import IngestConfig, Ingestor
    from movierec_sim.api import SiteApiServer

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
    return SimulatedStore(world, root / "store", ledger, root / "log")


@pytest.fixture(scope="session")
def trained_models(
    tmp_path_factory: pytest.TempPathFactory, simulated_store: SimulatedStore
) -> Path:
    """A registry trained on the simulated store, by the real command."""
    models = tmp_path_factory.mktemp("models")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "movierec.cli",
            "train",
            "--store",
            str(simulated_store.path),
            "--models",
            str(models),
            "--budget",
            "20",
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return models


@pytest.fixture(scope="session")
def shilled_site(tmp_path_factory: pytest.TempPathFactory) -> ShilledSite:
    """Five days of a 500-user site with a shilling campaign from day 3.5, ingested (shared
    by the shilling detector's and the trust mitigation's tests; tests/support/shilling.py)."""
    from tests.support.shilling import small_shilled_site

    return small_shilled_site(tmp_path_factory.mktemp("shilled"))


@pytest.fixture(scope="session")
def simulated_run(tmp_path_factory: pytest.TempPathFactory) -> SiteRun:
    """A short `movierec run`: the simulated site against our real service (about a minute;
    shared by the online and the simulator's conversion tests, which must not change it:
    they copy its registry before registering anything)."""
    return run_site(tmp_path_factory.mktemp("site-run"))
