from __future__ import annotations

import http.client
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from movierec.http.server import HTTPServer, ServerThread
from movierec.serving.app import RecommendationService
from movierec.serving.freshness import Freshness
from movierec.serving.loader import ModelLoader
from movierec.store.events import EventStore
from tests.conftest import SimulatedStore


@dataclass
class Running:
    service: RecommendationService
    loader: ModelLoader
    server: ServerThread
    models: Path
    log: Path
    freshness: Freshness | None

    @property
    def port(self) -> int:
        return self.server.port

    def get(self, path: str, method: str = "GET") -> tuple[int, bytes, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path)
            response = conn.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        finally:
            conn.close()


def wait_until(condition: Callable[[], object], timeout: float = 60.0, every: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(every)


@pytest.fixture
def serving(
    tmp_path: Path, trained_models: Path, simulated_store: SimulatedStore
) -> Iterator[Running]:
    """The real service on loopback, over a copy of the registry (tests may change it) and
    following a copy of the site's log (tests may append to it)."""
    models = tmp_path / "models"
    shutil.copytree(trained_models, models)
    log = tmp_path / "log"
    shutil.copy(simulated_store.log, log)
    service = RecommendationService(models, tmp_path / "telemetry", sample=1.0)
    loader = ModelLoader(service, poll=0.1, catalogue=EventStore(simulated_store.path).catalog_path)
    freshness = Freshness(service, f"file://{log}", poll=0.05)
    loader.on_install.append(freshness.model_changed)
    loader.start()
    freshness.start()
    server = ServerThread(HTTPServer(service.handle, port=0)).start()
    running = Running(service, loader, server, models, log, freshness)
    wait_until(lambda: service.snapshot is not None)
    try:
        yield running
    finally:
        server.stop()
        loader.stop()
        freshness.stop()
        service.answers.close()
