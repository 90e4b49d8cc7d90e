"""Workers of one consumer group share a live topic of four partitions, each partition's
events in its own part of the store: one worker SIGKILLed mid-stream, one added, the killed
one restarted, and at the end every clean line is stored exactly once, every duplicate
dropped, every bad line kept aside, as the simulator's ledger says. A real broker, real
`movierec ingest --partitioned` processes, a real site API."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from movierec.store.events import EventStore
from movierec.stream.kafka import KafkaSink, ensure_topic
from movierec_sim.api import SiteApiServer
from movierec_sim.world import World
from tests.support.simulated import assert_matches_ledger, simulate_into
from tests.support.waiting import wait_until

PARTITIONS = 4
LINES = 60_000


def worker(source: str, store: Path, api: str, group: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "movierec.cli", "ingest", "--source", source,
         "--store", str(store), "--api", api, "--api-rate-limit", "2000", "--group", group,
         "--partitioned", "--batch-lines", "2000", "--max-wait", "0.2", "--quiet", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def stored_lines(store: Path) -> int:
    checkpoint = EventStore(store).checkpoint()
    return checkpoint.counters.get("lines_read", 0) if checkpoint else 0


def owners(store: Path) -> set[int]:
    """The pids that have held a part (each writes its pid into the lock it takes)."""
    found = set()
    for lock in store.glob("parts/*/state/owner.lock"):
        text = lock.read_text().strip()
        if text:
            found.add(int(text))
    return found


@pytest.fixture
def live_topic(kafka_bootstrap: str, tmp_path: Path, world: World) -> Iterator[dict]:
    """A 4-partition topic the simulated site's log is published to as the test runs."""
    topic = f"group-{uuid.uuid4().hex[:8]}"
    log = tmp_path / "log"
    ledger = simulate_into(f"file://{log}", world, LINES, 0.05, seed=3)
    lines = log.read_bytes().split(b"\n")[:-1]
    ensure_topic(kafka_bootstrap, topic, partitions=PARTITIONS)
    published = threading.Event()
    pace = threading.Event()  # never set: its wait paces the live stream

    def publish() -> None:
        with KafkaSink(kafka_bootstrap, topic) as sink:
            assert sink.keyed  # by user: a repeated line lands in its original's partition
            for start in range(0, len(lines), 1_500):
                sink.write(lines[start : start + 1_500])
                sink.flush()
                pace.wait(0.25)
        published.set()

    thread = threading.Thread(target=publish, daemon=True)
    thread.start()
    yield {"source": f"kafka://{kafka_bootstrap}/{topic}", "ledger": ledger, "done": published}
    thread.join(timeout=120)


@pytest.mark.kafka
@pytest.mark.slow
def test_a_group_killed_grown_and_restarted_under_a_live_stream_stores_every_event_once(
    live_topic: dict, site_api: SiteApiServer, tmp_path: Path
) -> None:
    source, store, group = live_topic["source"], tmp_path / "store", f"g-{uuid.uuid4().hex[:6]}"
    first, second = (worker(source, store, site_api.url, group, "--follow") for _ in range(2))
    workers = [first, second]
    try:
        wait_until(lambda: stored_lines(store) > LINES // 10, 120, what="the first batches")
        first.send_signal(signal.SIGKILL)  # mid-stream, whatever it was doing
        first.wait(30)
        at_kill = stored_lines(store)
        added = worker(source, store, site_api.url, group, "--follow")
        workers.append(added)
        wait_until(lambda: added.pid in owners(store), 120, what="the added worker's parts")
        restarted = worker(source, store, site_api.url, group, "--follow")
        workers.append(restarted)
        wait_until(lambda: restarted.pid in owners(store), 120, what="the restarted worker")
        assert stored_lines(store) > at_kill  # the stream went on through the rebalances
        wait_until(live_topic["done"].is_set, 120, what="the site's last lines")
        wait_until(lambda: stored_lines(store) == LINES, 120, what="every line committed")
    finally:
        for process in workers[1:]:
            process.send_signal(signal.SIGTERM)
        codes = [process.wait(60) for process in workers[1:]]
    assert codes == [0, 0, 0], [p.stderr.read().decode()[-2000:] for p in workers[1:] if p.stderr]
    # One more worker alone, not following: it takes every part, finds them read to the
    # end, waits for the catalogue's verdicts, and reports on the whole store.
    report_path = tmp_path / "report.json"
    last = worker(source, store, site_api.url, group, "--report", str(report_path))
    _, err = last.communicate(timeout=300)
    assert last.returncode == 0, err.decode()
    report = json.loads(report_path.read_text())
    assert sorted(report["parts"]) == [str(p) for p in range(PARTITIONS)]
    assert sum(report["position"].values()) == LINES
    assert_matches_ledger(report, live_topic["ledger"])
