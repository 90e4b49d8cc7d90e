"""The answer log when its folder cannot take it: answers go on, the failure is loud
(/healthz, /metrics, the service's log), what could not be written waits within the
queue's bound and is written, in order and once, when the folder takes it again."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.serving.app import RecommendationService
from movierec.serving.metrics import Metrics
from movierec.serving.telemetry import AnswerLog
from tests.models.contract import planted_data
from tests.support.serving import HandMadeModels, hand_made_models, request

NEVER = 1e9  # the background flush never comes on its own: the tests flush by hand


def written(directory: Path) -> list[int]:
    """The users of every record in the folder, in the order written."""
    return [
        orjson.loads(line)["user"]
        for f in sorted(directory.glob("answers-*.jsonl"))
        for line in f.read_bytes().splitlines()
    ]


class Obstacle:
    """Makes the log's folder unwritable and writable again without losing what it holds:
    the folder moves aside and a plain file takes its name (root ignores permissions, so
    a mode would not stop these tests' writes)."""

    def __init__(self, directory: Path) -> None:
        self.directory, self.aside = directory, directory.with_name("aside")

    def block(self) -> None:
        if self.directory.is_dir():
            self.directory.rename(self.aside)
        self.directory.write_text("not a folder")

    def clear(self) -> None:
        if self.directory.is_file():
            self.directory.unlink()
        if self.aside.is_dir():
            self.aside.rename(self.directory)


def test_a_folder_it_cannot_make_is_reported_at_start_and_recovered_from(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "answers"
    obstacle = Obstacle(directory)
    obstacle.block()
    metrics = Metrics()
    with caplog.at_level(logging.ERROR, "movierec.serving.telemetry"):
        answers = AnswerLog(directory, 1.0, metrics, flush_every=NEVER)
    try:
        assert answers.failure is not None and str(directory) in answers.failure
        assert metrics.telemetry_failing and metrics.telemetry_write_failures == 1
        assert "answers go on but are not recorded" in caplog.text
        for user in range(3):
            answers.record(user, "v1", b"1,2,3\n")
        answers.flush()  # fails again: kept, and said once per cause, not once a flush
        assert answers.describe()["waiting"] == 3 and answers.describe()["writing"] is False
        assert caplog.text.count("cannot write the answer log") == 1
        obstacle.clear()
        answers.record(3, "v1", b"1,2,3\n")
        answers.flush()
        assert written(directory) == [0, 1, 2, 3]
        assert answers.failure is None and not metrics.telemetry_failing
        assert metrics.telemetry_written == 4 and metrics.telemetry_dropped == 0
        assert answers.describe() == {"directory": str(directory), "sample": 1.0, "writing": True}
    finally:
        answers.close()


# Each step: "r" records an answer, "ok" flushes into a writable folder, "fail" flushes
# into a blocked one.
steps = st.lists(st.sampled_from(["r", "r", "r", "ok", "fail"]), max_size=40)


@settings(max_examples=60)
@given(steps=steps, capacity=st.integers(1, 6))
def test_every_record_is_written_once_in_order_or_counted_as_dropped(
    tmp_path_factory: pytest.TempPathFactory, steps: list[str], capacity: int
) -> None:
    root = tmp_path_factory.mktemp("log")
    directory = root / "answers"
    obstacle = Obstacle(directory)
    metrics = Metrics()
    answers = AnswerLog(directory, 1.0, metrics, capacity=capacity, flush_every=NEVER)
    # The slow account: a bounded queue that a failed write leaves as it is.
    waiting: list[int] = []
    expected: list[int] = []
    dropped = 0
    failing = False  # as of the last write tried: a flush with nothing to write tries none
    try:
        for user, step in enumerate(steps):
            if step == "r":
                answers.record(user, "v1", b"7\n")
                if len(waiting) >= capacity:
                    dropped += 1
                else:
                    waiting.append(user)
                continue
            obstacle.block() if step == "fail" else obstacle.clear()
            answers.flush()
            if waiting:
                failing = step == "fail"
            if step == "ok":
                expected += waiting
                waiting = []
            assert metrics.telemetry_failing is failing
        obstacle.clear()
        answers.flush()
        assert written(directory) == expected + waiting
        assert metrics.telemetry_dropped == dropped
        assert metrics.telemetry_written == len(expected + waiting)
    finally:
        answers.close()
        shutil.rmtree(root)


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> HandMadeModels:
    return hand_made_models(tmp_path_factory.mktemp("models"), planted_data())


@pytest.fixture
def blocked_service(models: HandMadeModels, tmp_path: Path) -> Iterator[RecommendationService]:
    Obstacle(tmp_path / "answers").block()
    service = RecommendationService(models.registry.root, tmp_path / "answers")
    service.install(models.snapshot())
    yield service
    service.answers.close()


def test_a_service_that_cannot_log_answers_on_and_says_so(
    blocked_service: RecommendationService, tmp_path: Path
) -> None:
    response = blocked_service.handle(request("/recommend/1000"))
    assert response.status == 200 and len(response.body.split(b",")) == 20
    health = orjson.loads(blocked_service.handle(request("/healthz")).body)
    assert blocked_service.handle(request("/healthz")).status == 200  # ready: it answers
    assert health["answer_log"]["writing"] is False
    assert str(tmp_path / "answers") in health["answer_log"]["error"]
    text = blocked_service.handle(request("/metrics")).body.decode()
    assert "movierec_answer_log_failing 1.0" in text
    assert "movierec_answer_log_write_failures_total 1.0" in text


# A file-size limit makes the kernel take part of a write and refuse the rest, as a full
# disk does; in a child process, so nothing else of the test run is held to it.
PARTLY_WRITTEN = """
import json, resource, signal, sys
from pathlib import Path
from movierec.serving.metrics import Metrics
from movierec.serving.telemetry import AnswerLog
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails with EFBIG instead
directory = Path(sys.argv[1])
metrics = Metrics()
answers = AnswerLog(directory, 1.0, metrics, flush_every=1e9)
for user in range(40):
    answers.record(user, "v1", b"1,2,3\\n")
_, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
resource.setrlimit(resource.RLIMIT_FSIZE, (1000, hard))
answers.flush()
size = sum(f.stat().st_size for f in directory.glob("*.jsonl"))
failing, waiting = metrics.telemetry_failing, answers.describe()["waiting"]
resource.setrlimit(resource.RLIMIT_FSIZE, (hard, hard))
answers.flush()
answers.close()
print(json.dumps({"size": size, "failing": failing, "waiting": waiting,
                  "written": metrics.telemetry_written, "still": metrics.telemetry_failing}))
"""


def test_a_write_the_disk_took_in_part_is_finished_not_repeated(tmp_path: Path) -> None:
    directory = tmp_path / "answers"
    done = subprocess.run(
        [sys.executable, "-c", PARTLY_WRITTEN, str(directory)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    state = json.loads(done.stdout)
    assert state["size"] == 1000 and state["failing"] is True  # cut within a line
    assert 0 < state["waiting"] < 40
    assert written(directory) == list(range(40))  # every line once, in order, whole
    assert state["written"] == 40 and state["still"] is False
