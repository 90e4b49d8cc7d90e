"""A model that declares an answer delay (the slow kind) is answered that late, by the real
server on loopback, without holding up anyone else's answer; every other model is still
answered by the synchronous path."""

from __future__ import annotations

import http.client
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from movierec.http.server import Response, ServerThread
from movierec.models.slow import SlowRecommender
from movierec.registry.experiments import Arm, Experiment, Experiments
from movierec.serving.app import ExperimentPlan, RecommendationService
from tests.models.contract import planted_data
from tests.support.serving import HandMadeModels, hand_made_models, request
from tests.support.waiting import wait_until

DELAY_MS = 1500


@dataclass
class Served:
    models: HandMadeModels
    service: RecommendationService
    server: ServerThread
    experiment: Experiment
    slow: str

    def get(self, user: int) -> tuple[int, bytes, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=10)
        try:
            conn.request("GET", f"/recommend/{user}")
            response = conn.getresponse()
            return response.status, response.read(), dict(response.getheaders())
        finally:
            conn.close()

    def user_in(self, arm: str) -> int:
        data = self.models.data
        return next(int(u) for u in data.user_ids if self.experiment.arm_of(int(u)).name == arm)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    models = hand_made_models(tmp_path / "models", planted_data())
    slow = models.add(SlowRecommender(delay_ms=DELAY_MS))
    experiment = Experiments(models.registry.root).start(
        [Arm("control", models.version, 0.5), Arm("canary", slow, 0.5)],
        known_versions={models.version, slow},
    )
    service = RecommendationService(models.registry.root, tmp_path / "answers")
    service.install(models.snapshot())
    snapshots = {"control": models.snapshot(), "canary": models.snapshot(slow)}
    service.plan = ExperimentPlan(experiment, snapshots)
    server = ServerThread(service.http_server()).start()
    try:
        yield Served(models, service, server, experiment, slow)
    finally:
        server.stop()
        service.answers.close()


def test_a_fast_model_is_still_answered_synchronously(served: Served) -> None:
    response = served.service.handle(request(f"/recommend/{served.user_in('control')}"))
    assert isinstance(response, Response) and response.status == 200
    assert served.models.snapshot().answer_delay == 0.0


def test_the_slow_arm_answers_late_and_holds_up_nobody_else(served: Served) -> None:
    slow_user, fast_user = served.user_in("canary"), served.user_in("control")
    done: dict[str, object] = {}

    def ask_slowly() -> None:
        started = time.monotonic()
        done["answer"] = served.get(slow_user)
        done["seconds"] = time.monotonic() - started

    caller = threading.Thread(target=ask_slowly)
    caller.start()
    key = (served.experiment.id, "canary", served.slow)
    # The answer is recorded when it is decided, then waits out its delay.
    wait_until(lambda: served.service.metrics.arm_answers[key] == 1, what="the slow answer")
    started = time.monotonic()
    status, body, headers = served.get(fast_user)
    fast_seconds = time.monotonic() - started
    assert status == 200 and len(body.split(b",")) == 20
    assert headers["X-Experiment-Arm"] == "control"
    assert caller.is_alive(), "the fast answer came after the slow one: the loop was held"
    caller.join(timeout=10)
    status, body, headers = done["answer"]  # type: ignore[misc]
    assert status == 200 and len(body.split(b",")) == 20
    assert headers["X-Model-Version"] == served.slow
    assert done["seconds"] >= DELAY_MS / 1000  # type: ignore[operator]
    assert fast_seconds < DELAY_MS / 1000
    metrics = served.service.metrics
    # Both counted as answered requests; the slow one once it was given.
    assert metrics.requests[("recommend", 200)] == 2
    assert metrics.arm_answers[key] == 1
