"""Ingestion against the simulator's ledger: every clean line stored exactly once, every
duplicate dropped, every other fault quarantined with its raw bytes."""

from __future__ import annotations

import contextlib
import threading
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec.ingest.runner import IngestConfig, Ingestor
from movierec.store.events import EventStore
from movierec_sim.api import ApiFaults, SiteApiServer
from movierec_sim.world import World
from tests.support.simulated import SimulatedLog, assert_matches_ledger, simulate_into


def ingest(source: str, store: Path, api: str | None, **options) -> dict:
    options.setdefault("api_rate_limit", 2000.0)
    options.setdefault("catalogue_wait", 60.0)
    return Ingestor(IngestConfig(source=source, store=str(store), api=api, **options)).run()


def test_every_clean_line_once_and_every_fault_aside(
    tmp_path: Path, dirty_log: SimulatedLog, site_api: SiteApiServer
) -> None:
    report = ingest(dirty_log.url, tmp_path / "store", site_api.url, batch_lines=50_000)
    assert_matches_ledger(report, dirty_log.ledger)
    # The quarantine holds exactly the dirty lines (raw bytes) the ledger lists.
    lines = dirty_log.lines()
    dirty = Counter(
        lines[n - 1]
        for kind, numbers in dirty_log.ledger["fault_lines"].items()
        if kind != "duplicate"
        for n in numbers
    )
    with EventStore(tmp_path / "store").connect() as con:
        quarantined = Counter(raw for (raw,) in con.sql("SELECT raw FROM quarantine").fetchall())
        origins = con.sql("SELECT origin FROM quarantine LIMIT 3").fetchall()
    assert quarantined == dirty
    assert all(o.startswith("log@") for (o,) in origins)
    assert report["catalogue"]["movie"]["pending"] == 0


@pytest.mark.kafka
def test_the_same_through_the_real_broker(
    tmp_path: Path, world: World, kafka_bootstrap: str, site_api: SiteApiServer
) -> None:
    url = f"kafka://{kafka_bootstrap}/movielog-{uuid.uuid4().hex[:8]}"
    ledger = simulate_into(url, world, 100_000, 0.05, seed=3)
    report = ingest(url, tmp_path / "store", site_api.url, group=f"g-{uuid.uuid4().hex}")
    assert_matches_ledger(report, ledger)
    assert report["position"] == {"0": 100_000}


def test_interrupted_runs_resume_exactly(
    tmp_path: Path, dirty_log: SimulatedLog, site_api: SiteApiServer
) -> None:
    store = tmp_path / "store"
    runs = 0
    while True:
        ingestor = Ingestor(
            IngestConfig(
                source=dirty_log.url,
                store=str(store),
                api=site_api.url,
                batch_lines=7_000,
                api_rate_limit=2000.0,
            )
        )
        batches = ingestor.counters["batches"]
        report = ingestor.run(
            should_stop=lambda i=ingestor, b=batches: i.counters["batches"] >= b + 4
        )
        runs += 1
        if report["lines_read"] == dirty_log.ledger["lines"]:
            break
    assert runs >= 7  # each run stopped after four batches, duplicates straddled restarts
    assert_matches_ledger(report, dirty_log.ledger)


def test_a_failing_hanging_api_fills_in_on_retry(
    tmp_path: Path, dirty_log: SimulatedLog, world: World
) -> None:
    faults = ApiFaults(error_share=0.2, hang_share=0.05, hang_max_s=1.0, seed=3)
    with SiteApiServer(world, port=0, faults=faults) as api:
        report = ingest(dirty_log.url, tmp_path / "store", api.url, api_timeout=0.3)
        stats = api.stats()
    assert stats["errors"] > 100 and stats["hangs"] > 10
    assert report["catalogue"]["movie"]["pending"] == report["catalogue"]["movie"]["failed"] == 0
    users = report["catalogue"]["user"]
    assert users["pending"] == users["failed"] == 0 and users["ok"] > 500
    assert_matches_ledger(report, dirty_log.ledger)


def test_without_the_api_events_wait_and_a_later_run_reconciles(
    tmp_path: Path, dirty_log: SimulatedLog, site_api: SiteApiServer
) -> None:
    store = tmp_path / "store"
    offline = ingest(dirty_log.url, store, None, catalogue_wait=0.0)
    unknown = dirty_log.ledger["faults"]["unknown_movie"]
    assert sum(offline["stored"].values()) == sum(dirty_log.ledger["clean"].values()) + unknown
    assert offline["provisional"]["events"] >= unknown > 0
    assert "unknown_movie" not in offline["rejected"]
    online = ingest(dirty_log.url, store, site_api.url)  # no new lines: only the catalogue
    assert online["this_run"]["lines_read"] == 0
    assert_matches_ledger(online, dirty_log.ledger)


def test_follow_keeps_up_with_a_live_stream(
    tmp_path: Path, world: World, site_api: SiteApiServer
) -> None:
    log = tmp_path / "live.log"
    log.touch()
    done = threading.Event()
    ledger: dict = {}

    def produce() -> None:
        ledger.update(simulate_into(f"file://{log}", world, 60_000, 0.05, seed=9))
        done.set()

    ingestor = Ingestor(
        IngestConfig(
            source=f"file://{log}",
            store=str(tmp_path / "store"),
            api=site_api.url,
            follow=True,
            batch_lines=5_000,
            max_wait=0.1,
            api_rate_limit=2000.0,
        )
    )
    producer = threading.Thread(target=produce)
    producer.start()
    report = ingestor.run(
        should_stop=lambda: (
            done.is_set() and ingestor.counters["lines_read"] >= ledger.get("lines", -1)
        )
    )
    producer.join()
    assert report["lines_read"] == ledger["lines"] == 60_000
    assert report["stored"] == ledger["clean"]
    assert report["duplicates"] == ledger["faults"]["duplicate"]


def test_a_stopped_follow_run_applies_the_verdicts_on_what_it_read(
    tmp_path: Path, dirty_log: SimulatedLog, world: World
) -> None:
    """Stopped the moment it has read the last line, with the lookups of the last batches
    still in flight at a slow API: the stop waits for them, so no unknown movie's line is
    left stored as provisional."""
    with SiteApiServer(world, port=0, faults=ApiFaults(latency_ms=10.0)) as api:
        ingestor = Ingestor(
            IngestConfig(
                source=dirty_log.url,
                store=str(tmp_path / "store"),
                api=api.url,
                follow=True,
                batch_lines=20_000,
                max_wait=0.1,
                api_rate_limit=0.0,
            )
        )
        lines = dirty_log.ledger["lines"]
        report = ingestor.run(should_stop=lambda: ingestor.counters["lines_read"] >= lines)
    assert_matches_ledger(report, dirty_log.ledger)


def test_rebuild_reads_everything_again(
    tmp_path: Path, dirty_log: SimulatedLog, site_api: SiteApiServer
) -> None:
    store = tmp_path / "store"
    first = ingest(dirty_log.url, store, site_api.url)
    again = ingest(dirty_log.url, store, site_api.url, rebuild=True)
    assert again["this_run"]["lines_read"] == first["lines_read"]
    assert (again["stored"], again["rejected"], again["duplicates"]) == (
        first["stored"],
        first["rejected"],
        first["duplicates"],
    )
    assert again["catalogue"].get("requests", 0) == 0  # the catalogue cache survived


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.binary(max_size=80), min_size=1, max_size=200))
def test_no_bytes_stop_ingestion_and_every_line_is_accounted_for(
    tmp_path: Path, garbage: list[bytes]
) -> None:
    run = tmp_path / uuid.uuid4().hex
    run.mkdir()
    lines = [g.replace(b"\n", b" ") for g in garbage]
    (run / "log").write_bytes(b"".join(line + b"\n" for line in lines))
    report = ingest(f"file://{run / 'log'}", run / "store", None, catalogue_wait=0.0)
    accounted = (
        sum(report["stored"].values())
        + sum(report["rejected"].values())
        + report["duplicates"]
        + sum(report["other_kinds"].values())
    )
    assert report["lines_read"] == accounted == len(lines)


def test_kinds_we_do_not_use_are_counted_and_the_rating_scale_is_a_setting(
    tmp_path: Path,
) -> None:
    lines = [
        b"2025-01-01T10:00:00,5,GET /create_account",
        b"2025-01-01T10:00:01,5,GET /rate/padre+nuestro+2007=9",
        b"2025-01-01T10:00:02,5,GET /rate/padre+nuestro+2007=11",
    ]
    (tmp_path / "log").write_bytes(b"\n".join(lines) + b"\n")
    report = ingest(
        f"file://{tmp_path / 'log'}", tmp_path / "store", None, rating_scale=10, catalogue_wait=0.0
    )
    assert report["other_kinds"] == {"create_account": 1}
    assert report["stored"]["rate"] == 1
    assert report["rejected"] == {"rating_out_of_range": 1}


def rate_only_log(users: int = 6, days: int = 70) -> list[bytes]:
    """Ratings only, in time order, with week-long quiet gaps between bursts of a day."""
    lines = []
    start = datetime(2024, 3, 1, tzinfo=UTC)
    for burst in range(days // 7):
        day = start + timedelta(days=7 * burst)
        for user in range(users):
            for n in range(3):
                when = day + timedelta(minutes=10 * user + n)
                movie = f"movie+{(burst * 7 + user * 3 + n) % 40}+{1990 + n}"
                lines.append(f"{when:%Y-%m-%dT%H:%M:%S},{user + 1},GET /rate/{movie}={n + 2}")
    return [line.encode() for line in lines]


@pytest.mark.parametrize("batch_lines", [1, 7, 50, 500_000])
def test_a_rate_only_log_with_quiet_weeks_is_stored_whole_whatever_the_batch_size(
    tmp_path: Path, batch_lines: int
) -> None:
    lines = rate_only_log()
    (tmp_path / "log").write_bytes(b"\n".join(lines) + b"\n")
    report = ingest(
        f"file://{tmp_path / 'log'}",
        tmp_path / "store",
        None,
        batch_lines=batch_lines,
        catalogue_wait=0.0,
    )
    assert report["rejected"] == {}
    assert report["stored"]["rate"] == len(lines)


def test_a_line_dated_a_year_after_its_arrival_is_rejected_and_kept_aside(
    tmp_path: Path,
) -> None:
    lines = rate_only_log()
    lie = datetime.now(UTC) + timedelta(days=365)
    lines.insert(5, f"{lie:%Y-%m-%dT%H:%M:%S},3,GET /rate/movie+1+1990=4".encode())
    (tmp_path / "log").write_bytes(b"\n".join(lines) + b"\n")
    store = tmp_path / "store"
    report = ingest(f"file://{store.parent / 'log'}", store, None, catalogue_wait=0.0)
    assert report["rejected"] == {"future_timestamp": 1}
    assert report["stored"]["rate"] == len(lines) - 1
    with contextlib.closing(EventStore(store).connect()) as con:
        kept = con.sql("SELECT raw, reason FROM quarantine").fetchall()
    assert [(bytes(raw), reason) for raw, reason in kept] == [(lines[5], "future_timestamp")]
    # Within the tolerance (a setting), the same line is accepted.
    again = ingest(
        f"file://{store.parent / 'log'}",
        tmp_path / "store2",
        None,
        catalogue_wait=0.0,
        future_tolerance=400 * 86_400.0,
    )
    assert again["rejected"] == {}
