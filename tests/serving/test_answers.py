"""The answer path without a server or a simulation: a snapshot built by the loader's own
code from tiny models fitted on hand-made data, and RecommendationService.handle called
directly. The data plants its answers (tests/models/contract.py): users 0-13 watch only
movies 0-19, users 14-27 only movies 20-39, and the second group are all 40-year-old women
while the first are 27-year-old men."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.ids import MAX_USER_ID
from movierec.models.base import TrainingData
from movierec.models.popularity import PopularityRecommender
from movierec.serving.app import RecommendationService
from movierec.serving.freshness import Freshness
from movierec.serving.snapshot import DEPTH, Demographics, Snapshot
from tests.models.contract import HALF, NOW_NS, planted_data
from tests.support.serving import HandMadeModels, hand_made_models, header, item_names, request
from tests.support.waiting import wait_until

KNOWN = 1000  # row 0 of the planted data: watches 8 of movies 0-19
# Catalogued users the model never saw: one of each group's profile (age, gender, job).
WOMAN_OF_40, MAN_OF_27 = 5_000_001, 5_000_002
STRANGER = 7_777_777  # nobody knows anything about them


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> HandMadeModels:
    return hand_made_models(tmp_path_factory.mktemp("models"), planted_data())


@pytest.fixture(scope="module")
def snapshot(models: HandMadeModels) -> Snapshot:
    return models.snapshot()


@pytest.fixture
def service(models: HandMadeModels, snapshot: Snapshot) -> Iterator[RecommendationService]:
    service = RecommendationService(models.registry.root)
    service.install(snapshot)
    service.demographics = Demographics(
        user_ids=np.array([WOMAN_OF_40, MAN_OF_27], np.int64),
        age=np.array([40, 27], np.int16),
        gender=np.array([1, 0], np.int8),
        occupation=np.array([3, 3], np.int8),
    )
    yield service
    service.answers.close()


def answer(service: RecommendationService, user: int) -> list[str]:
    response = service.handle(request(f"/recommend/{user}"))
    assert response.status == 200, response.body
    return response.body.decode().split(",")


def watched(data: TrainingData, user: int) -> set[str]:
    row = data.user_rows(np.array([user]))[0]
    return {str(data.item_ids[i]) for i in data.matrix[row].indices} if row >= 0 else set()


def movies(first: int, last: int) -> set[str]:
    return {f"movie+{i}+{1990 + i}" for i in range(first, last)}


def test_a_known_user_gets_the_model_list(
    service: RecommendationService, models: HandMadeModels
) -> None:
    expected = item_names(models.model, models.model.recommend(np.array([KNOWN]), DEPTH)[0])
    assert answer(service, KNOWN) == expected
    assert service.metrics.answers == {"model": 1}
    # The planted answer: the 12 movies of the user's half not yet watched come first.
    assert set(expected[:12]) == movies(0, HALF) - watched(models.data, KNOWN)


def test_a_catalogued_user_unknown_to_the_model_gets_their_segment_list(
    service: RecommendationService,
) -> None:
    assert set(answer(service, WOMAN_OF_40)) == movies(HALF, 2 * HALF)
    assert set(answer(service, MAN_OF_27)) == movies(0, HALF)
    assert service.metrics.answers == {"segment": 2}


def test_a_stranger_gets_what_is_popular(
    service: RecommendationService, models: HandMadeModels
) -> None:
    popularity = PopularityRecommender().fit(models.data)
    assert answer(service, STRANGER) == popularity.recommend_ids(np.array([STRANGER]), 20)[0]
    assert service.metrics.answers == {"popular": 1}
    assert answer(service, STRANGER) != answer(service, KNOWN)


def test_a_user_with_fresh_events_gets_the_fresh_list(
    service: RecommendationService, models: HandMadeModels, tmp_path: Path
) -> None:
    before = answer(service, KNOWN)
    top = before[0]
    when = datetime.fromtimestamp(NOW_NS / 1e9 + 60, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    log = tmp_path / "log"
    log.write_text(f"{when},{KNOWN},GET /data/m/{top}/0.mpg\n")  # newer than the model
    freshness = Freshness(service, f"file://{log}", poll=0.05).start()
    try:
        wait_until(lambda: KNOWN in service.fresh, timeout=30, what="the fresh list")
    finally:
        freshness.stop()
    got = answer(service, KNOWN)
    assert service.metrics.answers == {"model": 1, "fresh": 1}
    assert top not in got and len(got) == 20 and len(set(got)) == 20
    assert not set(got) & watched(models.data, KNOWN)
    history = [*models.data.matrix[0].indices.tolist(), models.data.item_ids.tolist().index(top)]
    ranked = models.model.recommend_history(KNOWN, np.array(sorted(history)), None, DEPTH)
    assert got == item_names(models.model, ranked)


def test_a_fresh_list_of_the_previous_model_is_not_served_after_a_swap(
    service: RecommendationService, models: HandMadeModels, snapshot: Snapshot
) -> None:
    service.fresh[KNOWN] = (snapshot.version, np.arange(DEPTH, dtype=np.int32)[::-1])
    assert answer(service, KNOWN)[0] == "movie+39+2029"
    newer = models.snapshot(models.add(PopularityRecommender()))
    service.install(newer)
    response = service.handle(request(f"/recommend/{KNOWN}"))
    assert header(response, "X-Model-Version") == newer.version != snapshot.version
    assert response.body == newer.body(newer.lists[newer.row(KNOWN)])
    assert service.metrics.swaps == 1 and service.metrics.answers["model"] == 1


@settings(max_examples=200, deadline=None)
@given(
    user=st.sampled_from([*planted_data().user_ids.tolist(), WOMAN_OF_40, MAN_OF_27])
    | st.integers(1, MAX_USER_ID)
)
def test_every_answer_is_20_distinct_catalogue_movies_none_already_watched(
    models: HandMadeModels, snapshot: Snapshot, user: int
) -> None:
    service = RecommendationService(models.registry.root)
    service.install(snapshot)
    got = answer(service, user)
    assert len(got) == 20 and len(set(got)) == 20
    assert set(got) <= set(models.data.item_ids.tolist())
    assert not set(got) & watched(models.data, user)


def test_the_answer_names_the_model_version(
    service: RecommendationService, snapshot: Snapshot
) -> None:
    for method in ("GET", "HEAD"):
        response = service.handle(request(f"/recommend/{KNOWN}", method))
        assert response.status == 200 and response.content_type.startswith("text/plain")
        assert header(response, "X-Model-Version") == snapshot.version


GARBAGE = [
    "abc",
    "-1",
    "0",
    "007",
    "1.5",
    "1e3",
    "+5",
    "0x10",
    "%34%32",
    "%00",
    "42/extra",
    "",
    str(MAX_USER_ID + 1),
    "9" * 25,
    "a" * 5000,
    "١٢",  # Arabic-Indic digits: digits to Python, not to us
]


@pytest.mark.parametrize("text", GARBAGE)
def test_a_garbage_user_id_gets_400_with_a_reason(
    service: RecommendationService, text: str
) -> None:
    response = service.handle(request(f"/recommend/{text}"))
    reason = response.body.decode()
    assert response.status == 400 and reason.startswith("invalid user id ")
    assert reason.endswith("\n") and reason.count("\n") == 1 and len(reason) < 200
    assert text[:40].encode("ascii", "replace").decode() in reason
    assert service.metrics.requests[("recommend", 400)] == 1 and not service.metrics.answers


@pytest.mark.parametrize(
    "path", ["/", "/recommend", "/recommendations/42", "/healthz/ready", "/..%2f..%2fetc"]
)
def test_other_paths_get_404(service: RecommendationService, path: str) -> None:
    response = service.handle(request(path))
    assert response.status == 404 and b"GET /recommend/<userid>" in response.body


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
@pytest.mark.parametrize("path", ["/recommend/1000", "/recommend/abc", "/nowhere", "/healthz"])
def test_other_methods_get_405_naming_the_allowed_ones(
    service: RecommendationService, method: str, path: str
) -> None:
    response = service.handle(request(path, method))
    assert response.status == 405 and header(response, "Allow") == "GET, HEAD"


def test_no_model_loaded_yet_is_503_and_garbage_is_still_400(tmp_path: Path) -> None:
    service = RecommendationService(tmp_path / "models")
    response = service.handle(request(f"/recommend/{KNOWN}"))
    assert response.status == 503 and header(response, "Retry-After") == "1"
    assert service.handle(request("/recommend/abc")).status == 400
    health = service.handle(request("/healthz"))
    assert health.status == 503 and orjson.loads(health.body) == {"live": True, "ready": False}
    assert service.handle(request("/healthz/live")).status == 200
    assert not service.metrics.answers


def test_health_describes_the_model_and_answers_are_logged(
    models: HandMadeModels, snapshot: Snapshot, tmp_path: Path
) -> None:
    service = RecommendationService(models.registry.root, tmp_path / "telemetry", sample=1.0)
    service.install(snapshot)
    body = service.handle(request(f"/recommend/{KNOWN}")).body
    health = orjson.loads(service.handle(request("/healthz")).body)
    assert health["ready"] and health["model"]["version"] == snapshot.version
    assert health["model"]["users"] == 30 and health["model"]["items"] == 40
    assert health["model"]["segments"] is True
    service.answers.flush()
    service.answers.close()
    records = [
        orjson.loads(line)
        for f in (tmp_path / "telemetry").glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    assert [(r["user"], r["version"], r["items"]) for r in records] == [
        (KNOWN, snapshot.version, body.decode())
    ]
