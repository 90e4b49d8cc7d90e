"""movierec_sequential_answers_total: a walk through user ids seen live, on the real
service over loopback, and the counter against a plain reference."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from movierec.http.server import ServerThread
from movierec.serving.app import RecommendationService
from movierec.serving.sequence import SequentialAnswers
from movierec_sim.scraper import Scraper, ScraperConfig
from tests.models.contract import planted_data
from tests.support.serving import hand_made_models
from tests.support.waiting import wait_until

NAME = "movierec_sequential_answers_total"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RecommendationService, str]]:
    models = hand_made_models(tmp_path_factory.mktemp("models"), planted_data())
    service = RecommendationService(models.registry.root)  # no answer log: still counted
    service.install(models.snapshot())
    with ServerThread(service.http_server()) as thread:
        yield service, thread.url
    service.answers.close()


def scraped(url: str, **config: object) -> Scraper:
    scraper = Scraper(ScraperConfig(url=url, **config)).start()  # type: ignore[arg-type]
    wait_until(lambda: not scraper.running, timeout=20, what="the walk to end")
    scraper.stop()
    return scraper


def exposed(service: RecommendationService) -> float:
    for family in text_string_to_metric_families(service.metrics.render().decode()):
        for sample in family.samples:
            if sample.name == NAME:
                return sample.value
    raise AssertionError(f"{NAME} is not in /metrics")


def test_a_walk_through_ids_counts_every_answer_but_its_first(served):
    service, url = served
    before = exposed(service)
    scraper = scraped(url, first_id=1000, last_id=1199)
    assert scraper.counts.statuses[200] == 200
    assert exposed(service) - before == 199


def test_requests_in_flight_overtaking_each_other_still_count(served):
    service, url = served
    before = exposed(service)
    scraped(url, first_id=5_000_000, last_id=5_000_399, connections=8, pipeline=2)
    # A predecessor answered after its successor leaves that one uncounted, nothing else.
    assert exposed(service) - before >= 0.9 * 399


def test_random_ids_count_next_to_nothing(served):
    service, url = served
    before = exposed(service)
    config = ScraperConfig(url=url, mode="random", last_id=1_000_000, connections=4, seed=3)
    with Scraper(config) as scraper:
        wait_until(lambda: scraper.counts.answered >= 400, timeout=20, what="400 answers")
    # Each id has a 32-in-a-million chance of following one of the last 32.
    assert exposed(service) - before <= 1


@given(st.lists(st.integers(1, 40), max_size=200), st.integers(1, 8))
def test_the_count_is_that_of_a_plain_scan(users, window):
    counter = SequentialAnswers(window)
    for user in users:
        counter.observe(user)
    expected = sum(users[i] - 1 in users[max(0, i - window) : i] for i in range(len(users)))
    assert counter.count == expected


def test_a_window_holds_an_id_at_least():
    with pytest.raises(ValueError, match="at least one"):
        SequentialAnswers(0)
