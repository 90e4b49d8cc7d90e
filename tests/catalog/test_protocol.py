"""The catalogue client against answers the simulated API never gives: Retry-After, answers
for another id, unexpected messages and statuses, dropped keep-alive connections, answers
trickled a byte at a time. A real HTTP server on loopback gives them, scripted per test."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec.catalog.client import CatalogClient
from movierec.catalog.http import Backoff, Connection, Deadlines, Reply, parse_retry_after
from movierec.catalog.records import UserRecord
from tests.support.waiting import wait_until

Answer = tuple[int, dict[str, str], bytes]
USER = {"user_id": 12, "age": 27, "occupation": "college/grad student", "gender": "M"}
RECORD = UserRecord(12, 27, "M", "college/grad student")


class Scripted:
    """A real HTTP/1.1 server whose answers come from `answer(path, nth time asked)`."""

    def __init__(self, answer: Callable[[str, int], Answer]) -> None:
        self.answer = answer
        self.log: list[tuple[float, str]] = []
        self.connections = 0
        self.cut: list[float] = []  # when a trickled answer found the client gone
        lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with lock:
                    outer.connections += 1

            def do_GET(self) -> None:
                with lock:
                    nth = sum(path == self.path for _, path in outer.log)
                    outer.log.append((time.monotonic(), self.path))
                status, headers, body = outer.answer(self.path, nth)
                if "X-Trickle" in headers:
                    self.trickle(float(headers.pop("X-Trickle")), status, headers, body)
                    return
                # "X-Drop": close after answering without saying so, as a server does
                # with a keep-alive connection it finds idle.
                self.close_connection = headers.pop("X-Drop", None) is not None
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **headers}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def trickle(self, every: float, status: int, headers: dict, body: bytes) -> None:
                """The whole answer, status line first, one byte each `every` seconds."""
                head = [f"HTTP/1.1 {status} OK", f"Content-Length: {len(body)}"]
                head += [f"{name}: {value}" for name, value in headers.items()]
                answer = "\r\n".join([*head, "", ""]).encode() + body
                self.close_connection = True
                try:
                    for at in range(len(answer)):
                        self.wfile.write(answer[at : at + 1])
                        self.wfile.flush()
                        time.sleep(every)  # the server's pace, not a test's synchronisation
                except OSError:
                    with lock:
                        outer.cut.append(time.monotonic())

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def paths(self) -> list[str]:
        return [path for _, path in self.log]

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def ok(data: object) -> Answer:
    return 200, {}, orjson.dumps(data)


@pytest.fixture
def scripted(tmp_path: Path) -> Iterator[Callable[..., tuple[Scripted, Callable[..., Any]]]]:
    made: list[Any] = []

    def start(answer: Callable[[str, int], Answer]) -> tuple[Scripted, Callable[..., Any]]:
        server = Scripted(answer)
        made.append(server)

        def client(name: str = "catalog.sqlite", **options: Any) -> CatalogClient:
            options = {"backoff_base": 0.01, "backoff_max": 5.0, "rate_limit": None, **options}
            made.append(CatalogClient(server.url, tmp_path / name, **options))
            return made[-1]

        return server, client

    yield start
    for thing in reversed(made):
        thing.close() if isinstance(thing, CatalogClient) else thing.stop()


def test_retry_after_is_honoured(scripted: Any) -> None:
    def answer(path: str, nth: int) -> Answer:
        return (429, {"Retry-After": "1"}, b"{}") if nth == 0 else ok(USER)

    server, client = scripted(answer)
    catalog = client()
    catalog.request_users([12])
    assert catalog.wait_idle(10.0)
    assert catalog.user(12) == RECORD
    (first, _), (second, _) = server.log
    assert second - first >= 0.95  # backoff alone would have come back within ~10 ms
    assert catalog.stats()["errors"] == {"rate_limited": 1}


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 0 ") == 0.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after(None) is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") is None


def test_answers_that_cannot_be_used_are_retried(scripted: Any) -> None:
    script = [
        ok({**USER, "user_id": 13}),  # another user's answer
        ok({"message": "internal error"}),
        (200, {}, b"<html>busy</html>"),
        (404, {}, b'{"message": "not found"}'),  # a proxy's 404 says nothing of the user
        (302, {"Location": "/elsewhere"}, b""),
        ok(USER),
    ]
    server, client = scripted(lambda path, nth: script[min(nth, len(script) - 1)])
    catalog = client(max_attempts=10)
    catalog.request_users([12])
    assert catalog.wait_idle(10.0)
    assert catalog.user(12) == RECORD
    assert len(server.log) == len(script)
    assert catalog.stats()["errors"] == {
        "wrong_id": 1, "message": 2, "bad_json": 1, "http_status": 1,
    }  # fmt: skip


def test_a_round_of_failures_is_retried_later(scripted: Any) -> None:
    server, client = scripted(lambda path, nth: (503, {}, b"down") if nth < 4 else ok(USER))
    catalog = client(max_attempts=2, backoff_base=0.05, backoff_max=0.4)
    catalog.request_users([12])
    wait_until(lambda: catalog.user_status(12) == "failed", 5.0, every=0.005)
    details = catalog.details("user", 12)
    assert details is not None and details["next_retry"] > time.time() - 1
    assert catalog.wait_idle(0.0)  # a failed id that is not due yet is nothing to wait for
    wait_until(lambda: catalog.user_status(12) == "ok", 10.0)
    assert len(server.log) == 5
    assert catalog.stats()["rounds_failed"] == 2


def test_missing_fields_are_asked_for_again_and_merged(scripted: Any) -> None:
    script = [ok({"user_id": 12, "age": 27}), ok({**USER, "age": None}), ok({"user_id": 12})]
    server, client = scripted(lambda path, nth: script[min(nth, 2)])
    catalog = client()
    catalog.request_users([12])
    assert catalog.wait_idle(10.0)
    assert catalog.user(12) == RECORD  # the first two answers together are complete
    assert len(server.log) == 2


def test_fields_missing_every_time_are_recorded(scripted: Any) -> None:
    server, client = scripted(lambda path, nth: ok({"user_id": 12, "age": "27", "gender": "M"}))
    catalog = client(max_answers=3)
    catalog.request_users([12])
    assert catalog.wait_idle(10.0)
    assert catalog.user(12) == UserRecord(12, 27, "M", None)
    assert len(server.log) == 3
    details = catalog.details("user", 12)
    assert details is not None and details["problems"] == {"occupation": "missing"}
    assert details["raw"] == {"user_id": 12, "age": "27", "gender": "M"}


def test_an_id_found_once_keeps_its_answer_when_the_api_then_fails(scripted: Any) -> None:
    script = [ok({"user_id": 12, "age": 27}), (503, {}, b""), (503, {}, b"")]
    server, client = scripted(lambda path, nth: script[min(nth, 2)])
    catalog = client(max_attempts=2)
    catalog.request_users([12])
    assert catalog.wait_idle(10.0)
    assert catalog.user_status(12) == "ok" and catalog.user(12) == UserRecord(12, 27, None, None)
    details = catalog.details("user", 12)
    assert details is not None and details["problems"] == dict.fromkeys(
        ("gender", "occupation"), "missing"
    )
    assert len(server.log) == 3


def test_bad_settings_fail_before_anything_starts(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="http"):
        CatalogClient("ftp://api:8080", tmp_path / "a.sqlite")
    with pytest.raises(ValueError, match="positive"):
        CatalogClient(None, tmp_path / "b.sqlite", max_attempts=0)
    assert not (tmp_path / "a.sqlite").exists()


def test_offline_client_takes_ids_of_any_spelling(tmp_path: Path) -> None:
    with CatalogClient(None, tmp_path / "catalog.sqlite") as catalog:
        assert catalog.request_users(["5", 5, "05", "x", 0, -3, 2**40]) == 1
        assert catalog.request_movies(["walle+2008", "walle+2008"]) == 1
        assert catalog.user_status(5) == catalog.movie_status("walle+2008") == "pending"
        assert catalog.stats()["malformed_ids"] == 5
        assert catalog.user(5) is None and catalog.movie("walle+2008") is None
        assert catalog.wait_idle(1.0)


def test_movies_are_fetched_before_users(scripted: Any, tmp_path: Path) -> None:
    offline = CatalogClient(None, tmp_path / "catalog.sqlite")
    offline.request_users(range(1, 21))
    offline.request_movies([f"film+{n}+2000" for n in range(20)])
    offline.close()

    def answer(path: str, nth: int) -> Answer:
        if path.startswith("/movie/"):
            return ok({"message": "movie not found"})
        return ok({"message": "invalid userID"})

    server, client = scripted(answer)
    catalog = client(workers=1)
    assert catalog.wait_idle(10.0)
    paths = server.paths()
    assert [p.split("/")[1] for p in paths] == ["movie"] * 20 + ["user"] * 20
    assert server.connections == 1  # one keep-alive connection per worker


def test_a_dropped_keep_alive_connection_costs_no_attempt(scripted: Any) -> None:
    def answer(path: str, nth: int) -> Answer:
        user_id = int(path.rsplit("/", 1)[1])
        return 200, {"X-Drop": "1"}, orjson.dumps({**USER, "user_id": user_id})

    server, client = scripted(answer)
    catalog = client(workers=1, max_attempts=1)
    for user_id in range(12, 17):
        catalog.request_users([user_id])
        # No pause: the next request may race the server's close of the connection, and
        # either way the dropped connection must cost no attempt.
        assert catalog.wait_idle(5.0)
    assert catalog.user(12) == RECORD
    assert catalog.stats()["user"]["ok"] == 5
    assert catalog.stats()["errors"] == {}
    assert catalog.stats()["reconnects"] >= 1
    assert len(server.log) == 5 and server.connections == 5


TRICKLE = 0.02  # seconds per byte: each read is quick, the whole answer takes seconds


def test_a_trickled_answer_is_given_up_at_the_timeout_and_retried(scripted: Any) -> None:
    def answer(path: str, nth: int) -> Answer:
        if nth == 0:
            return 200, {"X-Trickle": str(TRICKLE)}, orjson.dumps(USER)
        return ok(USER)

    server, client = scripted(answer)
    timeout = 0.4
    catalog = client(timeout=timeout, workers=1)
    catalog.request_users([12])
    assert catalog.wait_idle(10.0)
    assert catalog.user(12) == RECORD  # retried as usual, and answered
    assert catalog.stats()["errors"] == {"timeout": 1}
    assert catalog.details("user", 12)["last_error"] == "timeout"  # type: ignore[index]
    (first, _), (second, _) = server.log
    # The whole answer would take over 3 s; the client gave up at its timeout and asked
    # again after a backoff of at most 10 ms.
    assert timeout - 0.05 <= second - first < timeout + 0.3
    wait_until(lambda: len(server.cut) == 1, 5.0)  # and it hung up on the trickle


def test_a_connection_gives_up_a_trickle_within_its_timeout(scripted: Any) -> None:
    server, _ = scripted(lambda path, nth: (200, {"X-Trickle": str(TRICKLE)}, b"{}" * 50))
    deadlines = Deadlines()
    conn = Connection(server.url, 0.3, deadlines)
    try:
        for _ in range(2):  # a new connection each time: the one cut is not reused
            started = time.monotonic()
            assert conn.get("/user/12") == Reply(0, error="timeout")
            assert 0.3 <= time.monotonic() - started < 0.6
        assert server.connections == 2
        assert conn.get("/user/12").status == 0  # still usable after giving up
    finally:
        conn.close()
        deadlines.close()


@given(st.integers(1, 80), st.floats(0.001, 5.0), st.floats(0.01, 120.0))
def test_backoff_doubles_up_to_its_cap_with_equal_jitter(
    failures: int, base: float, cap: float
) -> None:
    planned = min(cap, base * 2.0 ** (failures - 1))
    assert Backoff(base, cap, jitter=False).delay(failures) == pytest.approx(planned)
    jittered = Backoff(base, cap, jitter=True).delay(failures)
    assert planned / 2 * (1 - 1e-9) <= jittered <= planned * (1 + 1e-9)
