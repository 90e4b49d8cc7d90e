"""A store in parts (one per stream partition) reads as one store: every part's committed
events in the views, a checkpoint summed over the parts, and no way to write it as one.
The parts are written by real ingestors over known lines; the owner lock is tested across
real processes, one SIGKILLed while holding it."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from movierec.catalog.client import CatalogClient
from movierec.ingest.config import IngestConfig
from movierec.ingest.group import GroupIngestor
from movierec.ingest.runner import Ingestor
from movierec.store.events import Checkpoint, EventStore
from movierec.store.parts import OwnerLock, aggregate

T = "2025-10-17T01:{:02d}:00"
PART_LINES = {  # partition -> its lines (one duplicate and one bad line in partition 1)
    0: [f"{T.format(m)},7,GET /data/m/a+2000/{m}.mpg".encode() for m in range(5)],
    1: [
        f"{T.format(1)},8,GET /rate/b+1999=4".encode(),
        f"{T.format(1)},8,GET /rate/b+1999=4".encode(),
        f"{T.format(2)},8,GET /data/m/b+1999/0.mpg".encode(),
        b"not a log line",
    ],
}


def write_parts(root: Path) -> EventStore:
    store = EventStore(root)
    store.parts_dir.mkdir(parents=True)
    config = IngestConfig(source="kafka://127.0.0.1:9/t", store=str(root), api="")
    catalog = CatalogClient(None, store.catalog_path)
    try:
        for p, lines in PART_LINES.items():
            ingestor = Ingestor(config, part=(store.part(p), catalog))
            origins = lambda rows, p=p: pa.array([f"t/{p}@{r}" for r in rows.tolist()])  # noqa: E731
            arrivals = np.full(len(lines), 1_800_000_000 * 10**9, np.int64)
            ingestor.ingest_batch(lines, origins, {str(p): len(lines)}, arrivals)
    finally:
        catalog.close()
    return store


def test_the_parts_read_as_one_store(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    store = write_parts(tmp_path / "store")
    assert store.partitioned and [p.root.name for p in store.parts()] == ["0", "1"]
    checkpoint = store.checkpoint()
    assert checkpoint is not None
    assert checkpoint.seq == 2 and checkpoint.position == {"0": 5, "1": 4}
    assert checkpoint.counters["lines_read"] == 9 and checkpoint.counters["duplicates"] == 1
    counts = store.counts()
    assert counts["stored"] == {"watch": 6, "rate": 1, "recommendation": 0}
    assert sum(counts["rejected"].values()) == 1
    parts = [p.counts()["stored"] for p in store.parts()]
    assert [sum(c.values()) for c in parts] == [5, 2]
    assert all("/parts/" in f for f in store.committed_files("events/watch"))
    with caplog.at_level(logging.WARNING, "movierec.store"):
        assert store.position_after(checkpoint.seq) == (0, None)  # from the stream's start
    assert "written in parts" in caplog.text


def test_a_store_in_parts_cannot_be_written_as_one_nor_a_single_one_in_parts(
    tmp_path: Path,
) -> None:
    store = write_parts(tmp_path / "parts")
    for write in (store.recover, store.wipe, lambda: store.commit(Checkpoint(seq=9))):
        with pytest.raises(ValueError, match="written in parts"):
            write()
    with pytest.raises(ValueError, match="batch numbers are their own"):
        store.batch_files("events/watch", 0, 9)
    single = EventStore(tmp_path / "single")
    single.recover()
    single.commit(Checkpoint(seq=1))
    config = IngestConfig(
        source="kafka://127.0.0.1:9/t", store=str(single.root), api="", partitioned=True
    )
    with pytest.raises(ValueError, match="not in parts"):
        GroupIngestor(config)


def test_partitioned_needs_kafka_and_refuses_a_rebuild(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must be kafka"):
        IngestConfig(source=f"file://{tmp_path}/log", store=str(tmp_path), partitioned=True)
    with pytest.raises(ValueError, match="--rebuild cannot forget"):
        IngestConfig(
            source="kafka://127.0.0.1:9/t", store=str(tmp_path), partitioned=True, rebuild=True
        )


HOLD = """
import sys, signal
from pathlib import Path
from movierec.store.parts import OwnerLock
lock = OwnerLock(Path(sys.argv[1]))
lock.acquire(5)
print("held", flush=True)
signal.pause()
"""


def test_a_part_has_one_owner_until_it_dies(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        with pytest.raises(TimeoutError, match="still written by another worker"):
            OwnerLock(tmp_path).acquire(0.3)
    finally:
        holder.kill()  # SIGKILL: no clean-up runs, the kernel lets go of the lock
        holder.wait()
    lock = OwnerLock(tmp_path)
    lock.acquire(5)
    assert lock.path.read_text() == f"{os.getpid()}\n"
    lock.release()


counters = st.fixed_dictionaries(
    {
        "lines_read": st.integers(0, 10**6),
        "stored": st.dictionaries(st.sampled_from("wr"), st.integers(0, 99)),
    }
)


@given(st.lists(counters, min_size=1, max_size=5))
def test_the_summed_checkpoint_adds_every_parts_counters(parts: list[dict]) -> None:
    named = [
        (str(i), Checkpoint(seq=i + 1, position={str(i): i}, counters=c, files=[f"f{i}"]))
        for i, c in enumerate(parts)
    ]
    total = aggregate(named)
    assert total is not None
    assert total["seq"] == sum(range(1, len(parts) + 1))
    assert total["counters"]["lines_read"] == sum(c["lines_read"] for c in parts)
    for kind in "wr":
        expected = sum(c["stored"].get(kind, 0) for c in parts)
        assert total["counters"].get("stored", {}).get(kind, 0) == expected
    assert total["files"] == sorted(f"parts/{i}/f{i}" for i in range(len(parts)))
