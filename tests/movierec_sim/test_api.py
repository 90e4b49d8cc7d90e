"""The simulated user/movie API (SPEC section 2), against the real server on loopback."""

from __future__ import annotations

import copy
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson
import pytest

from movierec_sim.api import ApiFaults, SiteApiServer
from tests.support.waiting import wait_until

USER = {"user_id": 12, "age": 27, "occupation": "college/grad student", "gender": "M"}
MOVIE = {
    "id": "12+years+a+slave+2013", "tmdb_id": 76203, "imdb_id": "tt2024544",
    "title": "12 Years a Slave", "original_title": "12 Years a Slave",
    "adult": "False", "belongs_to_collection": {}, "budget": "20000000",
    "genres": [{"id": 18, "name": "Drama"}, {"id": 36, "name": "History"}],
    "homepage": "null", "original_language": "en", "overview": "...",
    "popularity": "30.316249", "poster_path": "/kb3X943WMIJYVg4SOAyK0pmWL5D.jpg",
    "production_companies": [{"name": "Plan B Entertainment", "id": 81}],
    "production_countries": [{"iso_3166_1": "US", "name": "United States of America"}],
    "release_date": "2013-10-18", "revenue": "187000000", "runtime": 134,
    "spoken_languages": [{"iso_639_1": "en", "name": "English"}],
    "status": "Released", "vote_average": "7.9", "vote_count": "3787",
}  # fmt: skip
OCCUPATIONS = {
    "academic/educator", "artist", "clerical/admin", "college/grad student", "customer service",
    "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student",
    "lawyer", "programmer", "retired", "sales/marketing", "scientist", "self-employed",
    "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
    "other or not specified",
}  # fmt: skip


class FakeWorld:
    def __init__(self) -> None:
        self.users = {12: copy.deepcopy(USER), 7: {**USER, "user_id": 7, "gender": "F"}}
        self.movies = {MOVIE["id"]: copy.deepcopy(MOVIE)}

    def user_json(self, user_id: int) -> dict[str, Any] | None:
        return self.users.get(user_id)

    def movie_json(self, movie_id: str) -> dict[str, Any] | None:
        return self.movies.get(movie_id)


@pytest.fixture
def api() -> Iterator[Callable[..., SiteApiServer]]:
    servers: list[SiteApiServer] = []

    def start(faults: ApiFaults | None = None, control: bool = False) -> SiteApiServer:
        server = SiteApiServer(FakeWorld(), port=0, faults=faults, control=control).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


Api = Callable[..., SiteApiServer]


class Client:
    """A keep-alive client that reconnects after the server closes (e.g. after a 5xx)."""

    def __init__(self, port: int, timeout: float = 5.0) -> None:
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def get(self, path: str, method: str = "GET", body: bytes | None = None) -> tuple[int, Any]:
        self.conn.request(method, path, body=body)
        resp = self.conn.getresponse()
        raw = resp.read()
        is_json = resp.getheader("Content-Type") == "application/json"
        return resp.status, orjson.loads(raw) if is_json and raw else raw


def test_user_json_shape(api: Api) -> None:
    status, body = Client(api().port).get("/user/12")
    assert (status, body) == (200, USER)
    assert isinstance(body["user_id"], int) and isinstance(body["age"], int)
    assert body["occupation"] in OCCUPATIONS and body["gender"] in ("M", "F")


def test_movie_json_complete_field_set(api: Api) -> None:
    server = api()
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    conn.request("GET", "/movie/12+years+a+slave+2013")
    resp = conn.getresponse()
    assert (resp.status, resp.getheader("Content-Type")) == (200, "application/json")
    body = orjson.loads(resp.read())
    assert body == MOVIE
    for name in ("adult", "budget", "popularity", "revenue", "vote_average", "vote_count"):
        assert isinstance(body[name], str), name  # numbers as strings, as the real site sends
    assert isinstance(body["tmdb_id"], int) and isinstance(body["runtime"], int)
    assert all(isinstance(g["id"], int) and isinstance(g["name"], str) for g in body["genres"])


def test_percent_encoded_movie_id(api: Api) -> None:
    assert Client(api().port).get("/movie/12%2Byears%2Ba%2Bslave%2B2013")[1] == MOVIE


@pytest.mark.parametrize(
    "userid", ["999", "abc", "-1", "", "99999999999999999999", "1" * 5000, "12/x", "1.5", "%31"]
)
def test_invalid_user_is_200_with_message(api: Api, userid: str) -> None:
    assert Client(api().port).get(f"/user/{userid}") == (200, {"message": "invalid userID"})


@pytest.mark.parametrize(
    "movieid", ["unknown+2000", "", "aDdjc1gioFamIk7", "12+years+a+slave+2013/x"]
)
def test_unknown_movie_is_200_with_message(api: Api, movieid: str) -> None:
    assert Client(api().port).get(f"/movie/{movieid}") == (200, {"message": "movie not found"})


@pytest.mark.parametrize("path", ["/", "/user", "/movie", "/users/12", "/recommend/12"])
def test_other_paths_are_404(api: Api, path: str) -> None:
    assert Client(api().port).get(path)[0] == 404


def test_finished_answers_503_until_the_site_has_simulated_its_last_day(api: Api) -> None:
    server = api()
    client = Client(server.port)
    assert client.get("/_site/finished") == (503, False)
    server.finished = True
    assert client.get("/_site/finished") == (200, True)
    assert client.get("/user/12") == (200, USER)  # and it still answers


def test_methods(api: Api) -> None:
    client = Client(api().port)
    assert client.get("/user/12", method="POST", body=b"{}")[0] == 405
    assert client.get("/user/12", method="HEAD") == (200, b"")


def _statuses(client: Client, n: int, path: str = "/user/12") -> list[int]:
    return [client.get(path)[0] for _ in range(n)]


def test_error_share_is_counted_and_bounded(api: Api) -> None:
    server = api(ApiFaults(error_share=0.3, seed=7))
    statuses = _statuses(Client(server.port), 600)
    errors = [s for s in statuses if s >= 500]
    assert len(errors) == server.stats()["errors"]
    assert abs(len(errors) - 180) < 60  # 5 sigma of Binomial(600, 0.3)
    assert set(errors) == {500, 502, 503}
    assert sum(server.stats()[f"errors_{s}"] for s in (500, 502, 503)) == len(errors)


def test_same_seed_same_faults(api: Api) -> None:
    server = api()
    client = Client(server.port)
    runs = []
    for _ in range(2):
        server.set_faults(ApiFaults(error_share=0.5, seed=3))
        runs.append(_statuses(client, 50))
    assert runs[0] == runs[1] and len(set(runs[0])) > 1


def test_latency_share(api: Api) -> None:
    server = api(ApiFaults(latency_ms=100, latency_share=0.5, seed=1))
    client = Client(server.port)
    slow = 0
    for _ in range(30):
        started = time.monotonic()
        assert client.get("/user/12") == (200, USER)
        slow += time.monotonic() - started >= 0.095
    delayed = server.stats()["delayed"]
    assert 3 < delayed < 27
    assert delayed <= slow <= delayed + 2  # a non-delayed request may be slow on a busy CI box


def test_latency_jitter(api: Api) -> None:
    server = api(ApiFaults(latency_ms=30, latency_jitter_ms=40, seed=2))
    client = Client(server.port)
    for _ in range(10):
        started = time.monotonic()
        client.get("/movie/12+years+a+slave+2013")
        assert 0.029 <= time.monotonic() - started < 0.5
    assert server.stats()["delayed"] == 10


def test_missing_fields(api: Api) -> None:
    server = api(ApiFaults(missing_share=0.5, seed=4))
    client = Client(server.port)
    damaged = 0
    for _ in range(200):
        status, body = client.get("/movie/12+years+a+slave+2013")
        assert status == 200 and body["id"] == MOVIE["id"]
        assert set(body) <= set(MOVIE) and all(body[k] == MOVIE[k] for k in body)
        damaged += set(body) != set(MOVIE)
    assert damaged == server.stats()["missing_fields"]
    assert abs(damaged - 100) < 40
    assert server.world.movie_json(MOVIE["id"]) == MOVIE  # type: ignore[attr-defined]


def test_null_fields(api: Api) -> None:
    server = api(ApiFaults(null_share=1.0, seed=5))
    client = Client(server.port)
    for _ in range(50):
        status, body = client.get("/user/12")
        assert status == 200 and set(body) == set(USER) and body["user_id"] == 12
        assert any(v is None for v in body.values())
    assert server.stats()["null_fields"] == 50
    assert server.world.user_json(12) == USER  # type: ignore[attr-defined]


def test_hang_share_times_out_clients(api: Api) -> None:
    server = api(ApiFaults(hang_share=0.3, seed=6))
    timeouts = 0
    for _ in range(20):
        try:
            assert Client(server.port, timeout=0.5).get("/user/12") == (200, USER)
        except TimeoutError:
            timeouts += 1
    assert timeouts == server.stats()["hangs"] and 0 < timeouts < 20


def test_hang_does_not_block_other_requests(api: Api) -> None:
    server = api(ApiFaults(hang_share=1.0))
    hung = Client(server.port, timeout=0.5)
    hung.conn.request("GET", "/user/12")
    # The request must reach the server before the faults change.
    wait_until(lambda: server.stats()["hangs"] == 1, timeout=3, what="the request to hang")
    server.set_faults(ApiFaults())
    started = time.monotonic()
    for _ in range(20):
        assert Client(server.port).get("/user/7")[0] == 200
    assert time.monotonic() - started < 0.5
    with pytest.raises(TimeoutError):
        hung.conn.getresponse()
    assert server.stats()["hangs"] == 1


def test_hang_is_capped(api: Api) -> None:
    server = api(ApiFaults(hang_share=1.0, hang_max_s=0.3))
    with socket.create_connection(("127.0.0.1", server.port), timeout=3) as sock:
        sock.sendall(b"GET /user/12 HTTP/1.1\r\nHost: a\r\n\r\n")
        started = time.monotonic()
        assert sock.recv(100) == b""  # dropped without an answer
        assert 0.25 < time.monotonic() - started < 2


def test_rate_limit(api: Api) -> None:
    server = api(ApiFaults(rate_limit_rps=20, rate_limit_burst=20))
    client = Client(server.port)
    started = time.monotonic()
    answers = [client.get("/user/12") for _ in range(100)]
    elapsed = time.monotonic() - started
    ok = sum(1 for status, _ in answers if status == 200)
    limited = [body for status, body in answers if status == 429]
    assert 20 <= ok <= 20 + 20 * elapsed + 1
    assert limited and all(body == {"message": "rate limit exceeded"} for body in limited)
    assert len(limited) == server.stats()["rate_limited"] == 100 - ok


def test_runtime_switching_by_method(api: Api) -> None:
    server = api()
    client = Client(server.port)
    assert set(_statuses(client, 20)) == {200}
    server.set_faults(error_share=1.0)
    assert all(s >= 500 for s in _statuses(client, 20))
    server.set_faults(ApiFaults())
    assert set(_statuses(client, 20)) == {200}


def test_control_endpoint(api: Api) -> None:
    server = api(control=True)
    client = Client(server.port)
    status, faults = client.get("/_control/faults", "POST", orjson.dumps({"error_share": 1.0}))
    assert status == 200 and faults["error_share"] == 1.0
    assert server.faults.error_share == 1.0
    assert all(s >= 500 for s in _statuses(client, 10))
    assert client.get("/_control/stats")[1]["errors"] == 10
    for bad in (b"not json", b"[1]", b'{"nope": 1}', b'{"error_share": 2}', b'{"seed": "x"}'):
        assert client.get("/_control/faults", "POST", bad)[0] == 400
    client.get("/_control/faults", "POST", orjson.dumps(ApiFaults().to_dict()))
    assert set(_statuses(client, 10)) == {200}
    assert client.get("/_control/reset_stats", "POST")[1]["requests"] == 0


def test_control_endpoint_off_by_default(api: Api) -> None:
    server = api()
    client = Client(server.port)
    assert client.get("/_control/faults", "POST", b'{"error_share": 1.0}')[0] == 404
    assert server.faults == ApiFaults()


def test_invalid_faults_rejected() -> None:
    with pytest.raises(ValueError):
        ApiFaults(error_share=1.5)
    with pytest.raises(ValueError):
        ApiFaults(error_statuses=(404,))


def test_serve_api_blocks_until_sigterm() -> None:
    code = (
        "import sys\n"
        "sys.path[:0] = [sys.argv[1], sys.argv[3]]\n"  # this folder, and the repository's
        "from test_api import FakeWorld\n"
        "from movierec_sim.api import serve_api\n"
        "serve_api(FakeWorld(), port=int(sys.argv[2]))\n"
    )
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    here = os.path.dirname(__file__)
    root = os.path.dirname(os.path.dirname(here))
    proc = subprocess.Popen([sys.executable, "-c", code, here, str(port), root])
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                assert Client(port).get("/user/12") == (200, USER)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        proc.kill()
        proc.wait()
