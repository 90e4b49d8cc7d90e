"""The catalogue client against the real simulated site API (SPEC section 2) on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from movierec.catalog.client import CatalogClient
from movierec.catalog.records import MovieRecord, UserRecord
from movierec_sim.api import ApiFaults, SiteApiServer
from movierec_sim.world import World, WorldConfig
from tests.support.waiting import wait_until

FAULTS = ApiFaults(
    error_share=0.2, hang_share=0.05, missing_share=0.1, null_share=0.1, hang_max_s=0.5, seed=3
)
# Retries in milliseconds, so a test about faults is not a test of patience.
QUICK = {"timeout": 0.3, "backoff_base": 0.01, "backoff_max": 0.3, "rate_limit": None}


@pytest.fixture(scope="module")
def world() -> World:
    return World(WorldConfig(users=150, movies=100, seed=11))


@pytest.fixture
def api(world: World) -> Iterator[Callable[..., SiteApiServer]]:
    servers: list[SiteApiServer] = []

    def start(faults: ApiFaults | None = None) -> SiteApiServer:
        servers.append(SiteApiServer(world, port=0, faults=faults).start())
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Callable[..., CatalogClient]]:
    clients: list[CatalogClient] = []

    def start(url: str | None, name: str = "catalog.sqlite", **options: Any) -> CatalogClient:
        clients.append(CatalogClient(url, tmp_path / name, **options))
        return clients[-1]

    yield start
    for each in clients:
        each.close()


@pytest.fixture
def dead_url() -> Iterator[str]:
    """An address where nothing listens: bound but not listening, so connects are refused."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


def expected_movie(world: World, movie_id: str) -> MovieRecord:
    doc = world.movie_json(movie_id)
    assert doc is not None
    year = int(movie_id[-4:]) if movie_id[-5] == "+" and movie_id[-4:].isdigit() else None
    return MovieRecord(
        movie_id, doc["title"], year, tuple(g["name"] for g in doc["genres"]), doc["runtime"],
        doc["original_language"], float(doc["popularity"]), float(doc["vote_average"]),
        int(doc["vote_count"]), doc["tmdb_id"], doc["imdb_id"], doc["adult"] == "True",
        doc["release_date"],
    )  # fmt: skip


def expected_user(world: World, user_id: int) -> UserRecord:
    doc = world.user_json(user_id)
    assert doc is not None
    return UserRecord(user_id, doc["age"], doc["gender"], doc["occupation"])


def all_ids(world: World) -> tuple[list[str], list[int]]:
    return list(world.movie_ids), list(range(1, world.n_users + 1))


def test_clean_api_fills_in_every_record(world: World, api: Any, client: Any) -> None:
    server = api()
    catalog = client(server.url, rate_limit=None)
    movies, users = all_ids(world)
    assert catalog.request_movies([*movies, "no+such+movie+2001"]) == len(movies) + 1
    assert catalog.request_users([*users, world.n_users + 1]) == len(users) + 1
    assert catalog.wait_idle(30.0)
    for movie_id in movies:
        assert catalog.movie_status(movie_id) == "ok"
        assert catalog.movie(movie_id) == expected_movie(world, movie_id)
    for user_id in users:
        assert catalog.user(user_id) == expected_user(world, user_id)
    assert catalog.unknown_movies() == {"no+such+movie+2001"}
    assert catalog.user_status(world.n_users + 1) == "not_found"
    assert catalog.user(world.n_users + 1) is None
    stats = catalog.stats()
    assert stats["movie"] == {"ok": len(movies), "not_found": 1, "pending": 0, "failed": 0}
    assert stats["requests"] == server.stats()["requests"] == len(movies) + len(users) + 2


def test_not_found_is_definitive_and_never_asked_again(api: Any, client: Any) -> None:
    server = api()
    catalog = client(server.url)
    unknown = ["ghost+2001", "ghost+2002", "+"]
    catalog.request_movies(unknown)
    catalog.request_users([10_000_000])
    assert catalog.wait_idle(10.0)
    assert catalog.movie_statuses([*unknown, "never+asked+2000"]) == {
        **dict.fromkeys(unknown, "not_found"),
        "never+asked+2000": "unseen",
    }
    assert catalog.unknown_movies() == set(unknown)
    assert server.stats()["movie_not_found"] == 3 and server.stats()["user_invalid"] == 1
    assert catalog.request_movies(unknown) == 0 and catalog.request_users([10_000_000]) == 0
    # Malformed ids (SPEC section 3) are settled without asking the API.
    assert catalog.request_movies(["Upper+Case+2000", "with space+2000"]) == 0
    assert catalog.unknown_movies() == {*unknown, "Upper+Case+2000", "with space+2000"}
    assert catalog.wait_idle(5.0)
    assert server.stats()["requests"] == 4


def test_every_id_fills_in_despite_faults(world: World, api: Any, client: Any) -> None:
    server = api(FAULTS)
    catalog = client(server.url, max_attempts=8, **QUICK)
    movies, users = all_ids(world)
    catalog.request_movies(movies)
    catalog.request_users(users)

    def settled() -> bool:
        stats = catalog.stats()
        return stats["movie"]["ok"] == len(movies) and stats["user"]["ok"] == len(users)

    wait_until(settled, 90.0, what="every id settled")
    faults = server.stats()
    assert (
        faults["errors"] and faults["hangs"] and faults["missing_fields"] and faults["null_fields"]
    )
    stats = catalog.stats()
    # A 5xx can arrive after the client gave up waiting, which it counts as a timeout.
    assert 0.8 * faults["errors"] <= stats["errors"]["server_error"] <= faults["errors"]
    assert stats["errors"]["timeout"] >= faults["hangs"] * 0.8  # a hang may end a closing run
    assert stats["refetches"] > 0  # fields missing on a first answer were asked for again
    complete = 0
    for kind, ids, expect, read in (
        ("movie", movies, expected_movie, catalog.movie),
        ("user", users, expected_user, catalog.user),
    ):
        for key in ids:
            record, wanted = read(key), expect(world, key)
            problems = catalog.details(kind, key)["problems"]
            for name in wanted.__slots__:
                value = getattr(record, name)
                # Either right, or missing and recorded as such: never wrong.
                assert value == getattr(wanted, name) or (value in (None, ()) and name in problems)
            complete += record == wanted
    assert complete >= 0.97 * (len(movies) + len(users))


def test_rate_limit_is_respected(world: World, api: Any, client: Any) -> None:
    server = api()
    rate = 25.0
    catalog = client(server.url, rate_limit=rate)
    catalog.request_movies(world.movie_ids)
    started = time.monotonic()
    samples: list[tuple[float, int]] = []
    while time.monotonic() - started < 2.5:
        samples.append((time.monotonic(), server.stats()["requests"]))
        time.sleep(0.05)
    for i, (t1, n1) in enumerate(samples):
        for t2, n2 in samples[i + 1 :]:
            # Tokens for the time between samples, plus the burst, plus one sample's slack.
            assert n2 - n1 <= rate * (t2 - t1 + 0.05) + catalog.stats()["burst"] + 1
    assert samples[-1][1] >= rate * 2.5 * 0.7  # paced, not stalled
    assert catalog.stats()["rate_limited_waits"] > 0


def test_api_rate_limit_slows_the_client_down(world: World, api: Any, client: Any) -> None:
    server = api(ApiFaults(rate_limit_rps=40, rate_limit_burst=5))
    catalog = client(server.url, rate_limit=200.0, backoff_base=0.05, backoff_max=1.0)
    catalog.request_movies(world.movie_ids)
    assert catalog.wait_idle(60.0)
    stats = catalog.stats()
    assert stats["movie"]["ok"] == world.n_movies
    assert stats["errors"]["rate_limited"] == server.stats()["rate_limited"] > 0
    assert stats["rate"] < 200.0  # halved at each 429, so most requests were not wasted
    assert server.stats()["rate_limited"] < world.n_movies


def test_restart_asks_nothing_it_knows(world: World, api: Any, client: Any) -> None:
    server = api()
    movies, users = all_ids(world)
    first = client(server.url, rate_limit=None)
    first.request_movies([*movies, "ghost+1990"])
    first.request_users(users)
    assert first.wait_idle(30.0)
    first.close()
    server.reset_stats()
    second = client(server.url)
    assert second.request_movies([*movies, "ghost+1990"]) == 0
    assert second.request_users(users) == 0
    assert second.wait_idle(5.0)
    assert server.stats()["requests"] == 0
    assert second.unknown_movies() == {"ghost+1990"}
    assert second.movie(movies[0]) == expected_movie(world, movies[0])
    assert second.user(users[-1]) == expected_user(world, users[-1])


def test_pending_and_failed_ids_resume_after_restart(
    world: World, api: Any, client: Any, dead_url: str
) -> None:
    movies, users = all_ids(world)
    down = client(dead_url, max_attempts=1, backoff_base=0.01, backoff_max=0.05)
    down.request_users(users[:10])
    wait_until(lambda: down.stats()["user"]["failed"] == 10, 10.0)
    down.close()
    offline = client(None)
    assert offline.request_movies(movies[:10]) == 10
    assert offline.wait_idle(0.0)  # offline there is nothing to wait for
    assert set(offline.movie_statuses(movies[:10]).values()) == {"pending"}
    assert offline.stats()["user"]["failed"] == 10
    offline.close()

    server = api()
    resumed = client(server.url)
    assert resumed.wait_idle(30.0)
    assert [resumed.movie(m) for m in movies[:10]] == [
        expected_movie(world, m) for m in movies[:10]
    ]
    assert [resumed.user(u) for u in users[:10]] == [expected_user(world, u) for u in users[:10]]
    assert server.stats()["requests"] == 20
    details = resumed.details("user", users[0])
    assert details is not None and details["rounds"] >= 1 and details["attempts"] >= 2


def test_a_down_api_never_blocks(client: Any, dead_url: str) -> None:
    catalog = client(dead_url, timeout=0.5)
    movie_ids = [f"film+{i}+2000" for i in range(100_000)]
    catalog.request_movies(movie_ids)
    catalog.request_users(range(1, 100_001))
    timings = []
    for n in range(3):
        started = time.perf_counter()
        assert catalog.request_movies([*movie_ids, f"new+{n}+2001"]) == 1
        assert catalog.request_users(range(1, 100_002 + n)) == 1
        timings.append(time.perf_counter() - started)
    assert min(timings) < 0.05
    wait_until(lambda: catalog.stats()["errors"].get("connection", 0) > 0, 10.0)
    assert catalog.movie_status("film+1+2000") in ("pending", "failed")
    started = time.monotonic()
    assert catalog.wait_idle(0.2) is False
    catalog.close()
    assert time.monotonic() - started < 1.5


def test_hanging_api_close_is_prompt(world: World, api: Any, client: Any) -> None:
    server = api(ApiFaults(hang_share=1.0, hang_max_s=30.0))
    catalog = client(server.url, timeout=10.0)
    catalog.request_movies(world.movie_ids)
    wait_until(lambda: server.stats()["hangs"] >= 8, 5.0)
    started = time.monotonic()
    assert catalog.wait_idle(0.2) is False
    assert time.monotonic() - started < 1.0
    catalog.close()
    assert time.monotonic() - started < 2.0  # requests in progress are cut, not awaited
    assert catalog.stats()["movie"]["pending"] == world.n_movies


def test_readers_in_other_threads_while_fetching(world: World, api: Any, client: Any) -> None:
    server = api(ApiFaults(error_share=0.1, seed=5))
    catalog = client(server.url, **QUICK)
    movies, users = all_ids(world)
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                for movie_id, user_id in zip(movies, users, strict=False):
                    record = catalog.movie(movie_id)
                    assert record is None or record.movie_id == movie_id
                    user = catalog.user(user_id)
                    assert user is None or user == expected_user(world, user_id)
                catalog.movie_statuses(movies)
                catalog.stats()
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    readers = [threading.Thread(target=read) for _ in range(3)]
    for thread in readers:
        thread.start()
    catalog.request_movies(movies)
    catalog.request_users(users)
    idle = catalog.wait_idle(30.0)
    done.set()
    for thread in readers:
        thread.join()
    assert idle and errors == []
    assert all(catalog.user(u) == expected_user(world, u) for u in users)
