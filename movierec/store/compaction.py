"""Compaction: the small files of committed batches merged into fewer, larger ones, so the
number of files (and with it commit, connect and query time) stays bounded however long
ingestion follows the stream.

The checkpoint's manifest (`Checkpoint.files`) names every committed data file; commit and
connect read it instead of walking the directories. Within one partition (a kind and date
directory, or quarantine/, provisional/) files have levels: a batch writes level 0
(`<seq>.parquet`); `FAN_IN` files of one level merge into one of the next
(`c<level>-<first seq>-<last seq>.parquet`, every row keeping its batch in a `seq`
column), up to `MAX_LEVEL`; a partition no batch has written for `SEAL_AFTER` commits (a
day gone by) merges what is left below `MAX_LEVEL` into one file. A merge streams one
source file at a time, so its memory is one source file's.

One merge is crash-safe in four steps, each leaving the store readable:
1. the merged file is written beside its sources (temporary name, fsync, rename);
2. a new checkpoint (same batch, same position) replaces the sources by it in the
   manifest and lists them as retired, with the time: that rename is the merge's commit.
   A crash before it leaves an unlisted merged file, which recovery deletes (only files of
   the merged-file pattern, never anything compaction did not write);
3. retired files stay on disk `GRACE_SECONDS`, so a reader that listed them before the
   merge still reads every event once;
4. then they are deleted, and the next checkpoint forgets them.

Hand-written on purpose: an open table format (Delta Lake) commits one table per
transaction, and our batch commit is one rename over five tables plus the dedup journal
and source position; docs/data-quality.md has the decision and the measurements.
"""

from __future__ import annotations

import os
import re
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.parquet as pq

if TYPE_CHECKING:
    from movierec.store.events import EventStore

FAN_IN = 10
MAX_LEVEL = 4
SEAL_AFTER = 600
GRACE_SECONDS = 120.0
MERGES_PER_CALL = 4

SMALL = re.compile(r"^(\d{10})\.parquet$")
MERGED = re.compile(r"^c(\d+)-(\d{10})-(\d{10})\.parquet$")


@dataclass(frozen=True)
class Policy:
    fan_in: int = FAN_IN
    max_level: int = MAX_LEVEL
    seal_after: int = SEAL_AFTER  # commits a partition must go unwritten before it is sealed
    grace_seconds: float = GRACE_SECONDS
    merges_per_call: int = MERGES_PER_CALL


@dataclass(frozen=True)
class Entry:
    path: str  # relative to the store root
    level: int
    first: int
    last: int


def entry(path: str) -> Entry | None:
    """A data file's level and batch range, from its name; None for a name not ours."""
    name = PurePosixPath(path).name
    if small := SMALL.match(name):
        seq = int(small[1])
        return Entry(path, 0, seq, seq)
    if merged := MERGED.match(name):
        return Entry(path, int(merged[1]), int(merged[2]), int(merged[3]))
    return None


@dataclass
class Merge:
    partition: str
    sources: list[Entry]
    level: int
    target: str = field(init=False)

    def __post_init__(self) -> None:
        first = min(s.first for s in self.sources)
        last = max(s.last for s in self.sources)
        self.target = f"{self.partition}/c{self.level}-{first:010d}-{last:010d}.parquet"


def plan(files: list[str], committed: int, policy: Policy) -> Merge | None:
    """The next merge the manifest calls for: a sealed partition first, then the lowest
    level holding `fan_in` files, oldest files first."""
    partitions: dict[str, list[Entry]] = defaultdict(list)
    for path in files:
        if (e := entry(path)) is not None:
            partitions[str(PurePosixPath(path).parent)].append(e)
    tiered: list[tuple[int, int, Merge]] = []
    for partition, entries in sorted(partitions.items()):
        below = sorted((e for e in entries if e.level < policy.max_level), key=_order)
        if len(below) > 1 and max(e.last for e in entries) + policy.seal_after <= committed:
            return Merge(partition, below, policy.max_level)
        by_level: dict[int, list[Entry]] = defaultdict(list)
        for e in below:
            by_level[e.level].append(e)
        for level, same in by_level.items():
            if len(same) >= policy.fan_in:
                oldest = same[: policy.fan_in]
                tiered.append((level, oldest[0].first, Merge(partition, oldest, level + 1)))
    if not tiered:
        return None
    return min(tiered, key=lambda t: (t[0], t[1]))[2]


def _order(e: Entry) -> tuple[int, int]:
    return (e.first, e.last)


def write(store: EventStore, merge: Merge) -> None:
    """Step 1: the merged file, complete and durable under its own name."""
    path = store.root / merge.target
    tmp = path.with_name(f".{path.name}.tmp")
    writer: pq.ParquetWriter | None = None
    try:
        for source in merge.sources:
            table = pq.read_table(store.root / source.path)
            if "seq" not in table.column_names:
                table = table.append_column(
                    "seq", pa.array([source.first] * len(table), pa.int64())
                )
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, **store.parquet_options(table))
            writer.write_table(table.cast(writer.schema))
    finally:
        if writer is not None:
            writer.close()
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    store.sync_directory(path.parent)


def install(store: EventStore, merge: Merge, now: float | None = None) -> None:
    """Step 2: the checkpoint that swaps the sources for the merged file (the commit)."""
    checkpoint = store.checkpoint()
    assert checkpoint is not None and checkpoint.files is not None
    gone = {s.path for s in merge.sources}
    checkpoint.files = sorted([p for p in checkpoint.files if p not in gone] + [merge.target])
    stamp = time.time() if now is None else now
    checkpoint.retired = [*checkpoint.retired, *([p, stamp] for p in sorted(gone))]
    store.install(checkpoint)


def expire(store: EventStore, policy: Policy, now: float | None = None) -> int:
    """Steps 3 and 4: delete retired files past their grace, then forget them."""
    checkpoint = store.checkpoint()
    if checkpoint is None or not checkpoint.retired:
        return 0
    cutoff = (time.time() if now is None else now) - policy.grace_seconds
    listed = set(checkpoint.files or ())
    due = [p for p, at in checkpoint.retired if at <= cutoff and p not in listed]
    if not due:
        return 0
    for path in due:  # deleted first: a crash here leaves names of missing files, harmless
        if entry(path) is not None:
            (store.root / path).unlink(missing_ok=True)
    done = set(due)
    checkpoint.retired = [r for r in checkpoint.retired if r[0] not in done]
    store.install(checkpoint)
    return len(due)


def compact(store: EventStore, policy: Policy, now: float | None = None) -> int:
    """Up to `policy.merges_per_call` merges, then expiry; the number of merges done."""
    merges = 0
    while merges < policy.merges_per_call:
        checkpoint = store.checkpoint()
        if checkpoint is None or checkpoint.files is None:
            break
        merge = plan(checkpoint.files, checkpoint.seq, policy)
        if merge is None:
            break
        write(store, merge)
        install(store, merge, now)
        merges += 1
    expire(store, policy, now)
    return merges
