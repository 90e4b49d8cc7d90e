from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from movierec.http.server import ServerThread
from movierec.serving.app import RecommendationService
from movierec.serving.freshness import Freshness
from movierec.serving.loader import ModelLoader
from movierec.store.events import EventStore
from tests.support.serving import Running, catalogue_with_a_stranger
from tests.support.simulated import SimulatedStore
from tests.support.waiting import wait_until


@pytest.fixture
def serving(
    tmp_path: Path, trained_models: Path, simulated_store: SimulatedStore
) -> Iterator[Running]:
    """The real service on loopback, over a copy of the registry (tests may change it),
    following a copy of the site's log (tests may append to it), with demographics from
    a copy of the catalogue that also knows CATALOGUED_STRANGER (tests/support/serving.py)."""
    models = tmp_path / "models"
    shutil.copytree(trained_models, models)
    log = tmp_path / "log"
    shutil.copy(simulated_store.log, log)
    catalogue = catalogue_with_a_stranger(
        EventStore(simulated_store.path).catalog_path, tmp_path / "catalog.sqlite"
    )
    service = RecommendationService(models, tmp_path / "telemetry", sample=1.0)
    loader = ModelLoader(service, poll=0.1, catalogue=catalogue)
    freshness = Freshness(service, f"file://{log}", poll=0.05)
    loader.on_install.append(freshness.model_changed)
    loader.start()
    freshness.start()
    server = ServerThread(service.http_server()).start()
    running = Running(service, loader, server, models, log, freshness)
    wait_until(lambda: service.snapshot is not None, what="the first model to load")
    try:
        yield running
    finally:
        server.stop()
        loader.stop()
        freshness.stop()
        service.answers.close()
