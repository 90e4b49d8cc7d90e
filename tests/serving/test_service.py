"""The recommendation service against a real server on loopback."""

from __future__ import annotations

import contextlib
import json
import socket
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec.catalog.reader import GENDER_CODE, occupation_code
from movierec.ids import is_movie_id
from movierec.registry.versions import Registry
from movierec.serving.snapshot import segment_index
from movierec.store.events import EventStore
from tests.support.serving import CATALOGUED_STRANGER, Running
from tests.support.simulated import SimulatedStore
from tests.support.waiting import wait_until


def ids_of(body: bytes) -> list[str]:
    text = body.decode()
    assert "\n" not in text.strip() and ", " not in text
    return text.split(",") if text else []


def test_an_answer_is_one_line_of_up_to_20_ids_from_the_production_model(
    serving: Running, simulated_store: SimulatedStore
) -> None:
    production = Registry(serving.models).production()
    movies = set(simulated_store.world.movie_ids)
    for user in (1, 42, 1999, 2000, 5000, 2147483647):
        status, body, headers = serving.get(f"/recommend/{user}")
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        assert headers["X-Model-Version"] == production
        ids = ids_of(body)
        assert len(ids) == 20 and len(set(ids)) == 20
        assert all(is_movie_id(i) and i in movies for i in ids)


def test_no_list_holds_a_movie_the_user_already_watched(
    serving: Running, simulated_store: SimulatedStore
) -> None:
    with EventStore(simulated_store.path).connect() as con:
        rows = con.sql(
            "SELECT user_id, list(DISTINCT CAST(movie_id AS VARCHAR)) FROM watch "
            "GROUP BY user_id ORDER BY user_id LIMIT 300"
        ).fetchall()
    for user, watched in rows:
        _, body, _ = serving.get(f"/recommend/{user}")
        assert not set(ids_of(body)) & set(watched), user


def test_users_the_model_does_not_know_get_a_fallback_of_20(serving: Running) -> None:
    snapshot = serving.service.snapshot
    assert snapshot is not None and snapshot.segments is not None
    stranger = CATALOGUED_STRANGER  # known to the catalogue, not to the model
    assert snapshot.row(stranger.user_id) < 0
    assert stranger.gender is not None and stranger.occupation is not None
    segment = segment_index(
        stranger.age or -1, GENDER_CODE[stranger.gender], occupation_code(stranger.occupation)
    )
    assert serving.service.demographics.segment(stranger.user_id) == segment
    before = serving.service.metrics.answers["segment"]
    _, body, _ = serving.get(f"/recommend/{stranger.user_id}")
    assert body == snapshot.body(snapshot.segments[segment]) and len(ids_of(body)) == 20
    assert serving.service.metrics.answers["segment"] == before + 1
    before = serving.service.metrics.answers["popular"]
    _, body, _ = serving.get("/recommend/1234567")  # nobody knows this user
    # Of unknown age, so without the movies the catalogue marks adult (serving/safety.py).
    expected, _ = serving.service.adult_rule.body(snapshot, 1234567, snapshot.popular)
    assert body == expected and len(ids_of(body)) == 20
    assert serving.service.metrics.answers["popular"] == before + 1


GARBAGE = [
    "/recommend/abc",
    "/recommend/-1",
    "/recommend/0",
    "/recommend/" + "9" * 25,
    "/recommend/1.5",
    "/recommend/42/extra",
    "/recommend/",
    "/recommend/%34%32",
    "/recommend/%00",
    "/recommend/1e3",
    "/recommend/+5",
    "/recommend/0x10",
    "/recommend/" + "a" * 5000,
    "/recommend",
    "/recommendations/42",
    "/",
    "/..%2f..%2fetc",
    "/recommend/2147483648",
    "/recommend/ 42",
]


@pytest.mark.parametrize("path", GARBAGE)
def test_every_garbage_form_gets_a_fast_4xx_with_a_reason(serving: Running, path: str) -> None:
    status, body, _ = serving.get(path.replace(" ", "%20"))
    assert 400 <= status < 500
    assert body.strip() and body.count(b"\n") <= 1


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"])
def test_other_methods_are_refused(serving: Running, method: str) -> None:
    status, _, headers = serving.get("/recommend/42", method)
    assert status == 405 and "GET" in headers.get("Allow", "")


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.binary(max_size=300))
def test_nothing_a_client_sends_causes_a_5xx_or_a_hang(serving: Running, raw: bytes) -> None:
    request = (
        b"GET /recommend/"
        + raw.replace(b"\r", b"").replace(b"\n", b"")
        + b" HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", serving.port), timeout=5) as sock:
        sock.sendall(request)
        head = sock.recv(64)
    if head:  # a request the server could not even frame may simply be closed
        status = int(head.split(b" ", 2)[1])
        assert status < 500, head
    assert serving.get("/recommend/7")[0] == 200


def test_health_metrics_and_the_answer_log(serving: Running) -> None:
    serving.get("/recommend/42")
    serving.get("/recommend/nope")
    status, body, _ = serving.get("/healthz")
    health = json.loads(body)
    assert status == 200 and health["ready"] and health["model"]["users"] > 1000
    _, text, _ = serving.get("/metrics")
    metrics = text.decode()
    assert 'movierec_requests_total{route="recommend",status="200"}' in metrics
    assert 'movierec_requests_total{route="recommend",status="400"}' in metrics
    assert (
        "movierec_request_seconds_bucket" in metrics and "movierec_model_swaps_total 0" in metrics
    )
    assert f'movierec_model_info{{version="{health["model"]["version"]}"}} 1' in metrics
    serving.service.answers.flush()
    records = [
        json.loads(line)
        for f in (serving.log.parent / "telemetry").glob("*.jsonl")
        for line in f.read_text().splitlines()
    ]
    mine = [r for r in records if r["user"] == 42]
    assert mine and mine[-1]["version"] == health["model"]["version"]
    assert len(mine[-1]["items"].split(",")) == 20


def test_a_new_watch_changes_the_list_without_retraining(serving: Running) -> None:
    # How fast is a benchmark's question; the bound here only keeps a broken follower from
    # hanging the suite, and is generous for a loaded 2-core machine.
    snapshot = serving.service.snapshot
    assert snapshot is not None
    user = int(snapshot.user_ids[len(snapshot.user_ids) // 2])
    _, body, _ = serving.get(f"/recommend/{user}")
    top = ids_of(body)[0]
    when = np.datetime64(snapshot.data_end_ns + 60 * 10**9, "ns").astype("datetime64[s]")
    with open(serving.log, "a") as log:
        log.write(f"{when},{user},GET /data/m/{top}/0.mpg\n")
    wait_until(lambda: top not in ids_of(serving.get(f"/recommend/{user}")[1]), timeout=60.0)
    _, body, _ = serving.get(f"/recommend/{user}")
    assert len(ids_of(body)) == 20 and serving.service.metrics.answers["fresh"] >= 1


def test_a_corrupt_artifact_is_refused_and_the_old_model_keeps_serving(
    serving: Running, tmp_path: Path
) -> None:
    registry = Registry(serving.models)
    good = registry.production()
    broken = (
        registry.latest_by_model()["popularity"]
        if not good.endswith("popularity")
        else (registry.latest_by_model()["als"])
    )
    for npy in registry.model_dir(broken).glob("*.npy"):
        npy.write_bytes(npy.read_bytes()[:40])  # a half-written, damaged file
    registry.promote(broken, "a test")
    wait_until(lambda: serving.service.metrics.swap_failures >= 1, timeout=10)
    status, _, headers = serving.get("/recommend/42")
    assert status == 200 and headers["X-Model-Version"] == good
    assert broken in serving.loader.refused
    health = json.loads(serving.get("/healthz")[1])
    assert broken in health["last_error"]
    with contextlib.suppress(KeyError):
        del serving.loader.refused["registry"]
