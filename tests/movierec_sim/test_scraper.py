"""The scraping and flooding client against real HTTP servers on loopback."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import orjson
import pytest

from movierec.http.server import HTTPServer, Request, Response, ServerThread
from movierec_sim.scraper import Scraper, ScraperConfig, main
from tests.support.ports import free_port
from tests.support.waiting import wait_until


class Recorder:
    """A handler answering `<id>,<id+1>` for /recommend/<id>, recording every path asked."""

    def __init__(self) -> None:
        self.paths: list[str] = []

    def __call__(self, request: Request) -> Response:
        self.paths.append(request.path)
        user = int(request.path.rsplit("/", 1)[1])
        return Response(200, f"{user},{user + 1}\n".encode())


@pytest.fixture
def recorded() -> Iterator[tuple[Recorder, str]]:
    recorder = Recorder()
    with ServerThread(HTTPServer(recorder)) as thread:
        yield recorder, thread.url


def scrape_until_done(config: ScraperConfig) -> Scraper:
    scraper = Scraper(config).start()
    wait_until(lambda: not scraper.running, timeout=20, what="the ids to run out")
    scraper.stop()
    return scraper


def test_a_sequential_walk_asks_every_id_in_order_and_keeps_each_list(recorded):
    recorder, url = recorded
    scraper = scrape_until_done(ScraperConfig(url=url, first_id=7, last_id=306))
    assert recorder.paths == [f"/recommend/{user}" for user in range(7, 307)]
    counts = scraper.counts
    assert (counts.sent, counts.answered, dict(counts.statuses)) == (300, 300, {200: 300})
    assert scraper.exhausted
    assert scraper.answers == {user: f"{user},{user + 1}".encode() for user in range(7, 307)}


def test_several_pipelining_connections_still_cover_each_id_once(recorded):
    recorder, url = recorded
    config = ScraperConfig(url=url, last_id=1000, connections=8, pipeline=4)
    scraper = scrape_until_done(config)
    assert sorted(recorder.paths) == sorted(f"/recommend/{user}" for user in range(1, 1001))
    assert scraper.counts.answered == 1000
    assert scraper.counts.connections_opened == 8
    assert len(scraper.answers) == 1000


def test_a_set_rate_spaces_the_requests(recorded):
    _, url = recorded
    started = time.perf_counter()
    scraper = scrape_until_done(ScraperConfig(url=url, last_id=60, rate=200, connections=4))
    # The 60th request is due 59/200 s after the first, whatever the connections.
    assert time.perf_counter() - started >= 59 / 200
    assert scraper.counts.answered == 60


def test_a_flood_counts_answers_but_keeps_no_lists(recorded):
    recorder, url = recorded
    config = ScraperConfig(url=url, mode="flood", connections=16, first_id=5, last_id=9)
    with Scraper(config) as flood:
        wait_until(lambda: flood.counts.answered >= 2000, timeout=20, what="2,000 answers")
    counts = flood.counts
    assert counts.answered == counts.sent == len(recorder.paths)
    assert counts.statuses[200] == counts.answered
    assert flood.answers == {}
    assert {int(p.rsplit("/", 1)[1]) for p in recorder.paths} <= set(range(5, 10))


def test_an_answer_past_the_timeout_is_counted_and_its_connection_dropped():
    async def slow(request: Request) -> Response:
        await asyncio.sleep(2.0)
        return Response(200, b"late\n")

    with ServerThread(HTTPServer(slow)) as thread:
        config = ScraperConfig(url=thread.url, last_id=2, timeout=0.2, keep_latencies=True)
        scraper = scrape_until_done(config)
    counts = scraper.counts
    assert (counts.sent, counts.answered, counts.timeouts) == (2, 0, 2)
    assert counts.connections_opened == 2  # a new connection after the first timed out
    assert len(scraper.latencies) == 0


def test_a_refused_connection_is_an_error_not_a_crash():
    with Scraper(ScraperConfig(url=f"http://127.0.0.1:{free_port()}")) as scraper:
        wait_until(lambda: scraper.counts.errors >= 3, timeout=10, what="refused connections")
    assert scraper.counts.answered == 0


def test_the_command_prints_its_counts(recorded, capsys):
    _, url = recorded
    assert main(["--url", url, "--last-id", "50", "--connections", "2", "--seconds", "20"]) == 0
    out = orjson.loads(capsys.readouterr().out)
    assert (out["sent"], out["answered"], out["users_kept"]) == (50, 50, 50)
    assert out["statuses"] == {"200": 50}


@pytest.mark.parametrize(
    "argv",
    [["--url", "ftp://x"], ["--first-id", "10", "--last-id", "3"], ["--connections", "0"]],
)
def test_bad_settings_are_refused_with_a_message(argv, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("scraper:")
