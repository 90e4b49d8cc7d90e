"""One real Prometheus for the whole test session, started by scripts/prometheus.py with
the shipped rules; tests point it at what they start by rewriting its targets file."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.prometheus import Prometheus, require, start_prometheus, stop_prometheus


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    require("/usr/bin/prometheus", "Prometheus (/usr/bin/prometheus)")
    server = start_prometheus(tmp_path_factory.mktemp("prometheus") / "prometheus")
    try:
        yield server
    finally:
        stop_prometheus(server)
