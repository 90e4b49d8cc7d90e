"""`movierec ingest --metrics-port`: a real ingestion of a small hand-made log, scraped over
real HTTP while it follows the log, with the exact count of every reason known beforehand."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from movierec.logformat.reference import REASONS
from movierec.stream import open_sink
from tests.support.waiting import wait_until

WATCH = b"2025-10-17T01:38:54,220358,GET /data/m/padre+nuestro+2007/90.mpg"
GOOD = [
    WATCH,
    b"2025-10-17T01:38:55,220358,GET /data/m/padre+nuestro+2007/91.mpg",
    b"2025-10-17T01:38:56,7,GET /data/m/mona+lisa+1986/0.mpg",
    b"2025-10-17T01:39:12,220358,GET /rate/padre+nuestro+2007=4",
    b"2022-02-08T12:02:38.164729,141977,recommendation request team04.example.edu:8082, "
    b"status 200, result: mona+lisa+1986, interstellar+2014, 89 ms",
]
# Each bad line with the reason the parser (or the future rule) gives it.
BAD = [
    (b"2022-11-14T1O2:23:16,1,GET /data/m/a+2000/1.mpg", "bad_timestamp"),
    (b"2022-13-14T10:23:16,1,GET /data/m/a+2000/1.mpg", "bad_timestamp"),
    (b"2025-10-17T01:39:12,5,GET /rate/padre+nuestro+2007=9", "rating_out_of_range"),
    (b"", "empty"),
    (b"2025-10-17T01:39:12,5,GZET /data/m/a+2000/1.mpg", "malformed"),
    (b"2025-10-17T01:39:12,abc,GET /data/m/a+2000/1.mpg", "bad_user_id"),
    (b"2099-01-01T00:00:00,5,GET /data/m/a+2000/1.mpg", "future_timestamp"),
]

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(url: str) -> Samples:
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def committed(url: str, lines: int) -> bool:
    """True once `lines` lines are counted (whole committed batches only) and this run's
    commit time is shown."""
    got = scrape(url)
    key = ("movierec_ingest_last_commit_timestamp_seconds", frozenset())
    return got.get(("movierec_ingest_lines_total", frozenset())) == lines and key in got


def write(log: Path, lines: list[bytes]) -> None:
    sink = open_sink(f"file://{log}")
    try:
        sink.write(lines)
        sink.flush()
    finally:
        sink.close()


@pytest.fixture
def following(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A real `movierec ingest --follow --metrics-port 0` over an empty log: (log, url)."""
    log = tmp_path / "log"
    write(log, [])
    errors = tmp_path / "stderr"
    with errors.open("wb") as err:
        proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "movierec.cli", "ingest"),
                *("--source", f"file://{log}", "--store", str(tmp_path / "store")),
                *("--api", "", "--follow", "--max-wait", "0.1", "--metrics-port", "0"),
                "--quiet",
            ],
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    address = re.compile(r"metrics on (http://127\.0\.0\.1:\d+/metrics)")
    try:
        wait_until(
            lambda: address.search(errors.read_text()) or proc.poll() is not None,
            what="ingestion to say where its metrics are",
        )
        found = address.search(errors.read_text())
        assert found, errors.read_text()
        yield log, found.group(1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, errors.read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_every_line_is_counted_by_outcome_and_reason(following: tuple[Path, str]) -> None:
    log, url = following
    lines = [*GOOD, WATCH, *(line for line, _ in BAD)]  # WATCH twice: one duplicate
    write(log, lines)
    wait_until(lambda: committed(url, len(lines)), what="ingestion to commit every line")
    got = scrape(url)

    def value(name: str, **labels: str) -> float:
        return got[(name, frozenset(labels.items()))]

    assert value("movierec_ingest_stored_total", kind="watch") == 3
    assert value("movierec_ingest_stored_total", kind="rate") == 1
    assert value("movierec_ingest_stored_total", kind="recommendation") == 1
    assert value("movierec_ingest_duplicates_total") == 1
    expected = dict.fromkeys(REASONS, 0)
    for _, reason in BAD:
        expected[reason] += 1
    rejected = {
        dict(labels)["reason"]: v
        for (name, labels), v in got.items()
        if name == "movierec_ingest_rejected_total"
    }
    assert rejected == expected
    assert value("movierec_ingest_batches_total") >= 1
    now = time.time()
    assert now - 60 < value("movierec_ingest_last_commit_timestamp_seconds") <= now
    assert 0 <= value("movierec_ingest_lag_seconds") < 60

    # Followed: lines appended later are counted as they come.
    write(log, [BAD[3][0], GOOD[2].replace(b",7,", b",8,")])
    wait_until(lambda: committed(url, len(lines) + 2), what="ingestion to commit the rest")
    got = scrape(url)
    assert value("movierec_ingest_rejected_total", reason="empty") == 2
    assert value("movierec_ingest_stored_total", kind="watch") == 4


def test_no_lag_or_commit_time_before_the_first_batch(following: tuple[Path, str]) -> None:
    _, url = following
    names = {name for name, _ in scrape(url)}
    assert "movierec_ingest_lines_total" in names
    assert "movierec_ingest_lag_seconds" not in names
    assert "movierec_ingest_last_commit_timestamp_seconds" not in names
