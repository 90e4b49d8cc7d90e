"""What the service refuses never costs it a list or an answer-log record, and what the
HTTP layer refuses is still counted in /metrics: the service on loopback over tiny
hand-fitted models (tests/support/serving.py), its answer log read back from disk."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from movierec.http.server import ServerThread
from movierec.serving.app import RecommendationService
from movierec.serving.config import ServeConfig
from tests.models.contract import planted_data
from tests.support.serving import HandMadeModels, hand_made_models, request
from tests.support.waiting import wait_until

KNOWN = 1000  # a user the hand-made model knows


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> HandMadeModels:
    return hand_made_models(tmp_path_factory.mktemp("models"), planted_data())


@pytest.fixture
def service(models: HandMadeModels, tmp_path: Path) -> Iterator[RecommendationService]:
    service = RecommendationService(models.registry.root, tmp_path / "answers", sample=1.0)
    service.install(models.snapshot())
    yield service
    service.answers.close()


def logged(service: RecommendationService, directory: Path) -> list[dict[str, Any]]:
    service.answers.flush()
    return [
        orjson.loads(line)
        for f in sorted(directory.glob("*.jsonl"))
        for line in f.read_text().splitlines()
    ]


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_a_refused_method_computes_nothing_and_logs_nothing(
    service: RecommendationService, tmp_path: Path, method: str
) -> None:
    response = service.handle(request(f"/recommend/{KNOWN}", method))
    assert response.status == 405
    assert not service.metrics.answers  # no list was looked up
    assert service.metrics.handler_latency.count == 0
    assert service.metrics.requests == {("recommend", 405): 1}
    assert logged(service, tmp_path / "answers") == []
    assert service.handle(request(f"/recommend/{KNOWN}")).status == 200
    assert [r["user"] for r in logged(service, tmp_path / "answers")] == [KNOWN]


def _exchange(port: int, data: bytes) -> bytes:
    """Send `data` on a new connection and read until the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    body = _exchange(port, b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    text = body.partition(b"\r\n\r\n")[2].decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_service_on_loopback_refuses_bodies_and_counts_every_answer(
    service: RecommendationService, tmp_path: Path
) -> None:
    with ServerThread(service.http_server()) as thread:
        port = thread.port
        body = b"POST /recommend/1000 HTTP/1.1\r\nHost: a\r\nContent-Length: 1048576\r\n\r\n"
        refused = _exchange(port, body + b"b" * 4096)  # the body has only begun
        assert refused.startswith(b"HTTP/1.1 413 ")
        assert service.metrics.requests == {}  # the handler never saw it
        post = b"POST /recommend/1000 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        assert _exchange(port, post).startswith(b"HTTP/1.1 405 ")
        get = b"GET /recommend/1000 HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
        assert _exchange(port, get).startswith(b"HTTP/1.1 200 ")
        assert _exchange(port, b"GET / HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.1 400 ")
        stats = service.metrics.http
        wait_until(lambda: stats.latency.count == 4, timeout=5, what="four answers timed")
        got = scrape(port)
    responses = {
        dict(labels)["status"]: value
        for (name, labels), value in got.items()
        if name == "movierec_http_responses_total"
    }
    assert responses == {"200": 1, "400": 1, "405": 1, "413": 1}
    assert got[("movierec_http_bad_requests_total", frozenset())] == 2
    assert got[("movierec_request_seconds_count", frozenset())] == 4
    assert got[("movierec_handler_seconds_count", frozenset())] == 1
    assert got[("movierec_http_connections_total", frozenset())] == 5
    assert got[("movierec_http_open_connections", frozenset())] == 1  # the scrape's own
    assert [r["user"] for r in logged(service, tmp_path / "answers")] == [KNOWN]


def test_serve_binds_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    assert ServeConfig(models_dir=tmp_path).host == "127.0.0.1"
    assert ServeConfig(models_dir=tmp_path, host="0.0.0.0").host == "0.0.0.0"
