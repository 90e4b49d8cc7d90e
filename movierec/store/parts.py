"""A store written in parts: one per partition of the stream, each by whichever worker of a
consumer group owns that partition (`movierec ingest --partitioned`, ingest/group.py).

    STORE/parts/<partition>/   a whole store of its own (events, quarantine, provisional,
                               state/checkpoint.json with the partition's offset, dedup)
    STORE/catalog.sqlite       the catalogue cache, shared by every worker

Each part commits exactly as a single store does, so a part is exactly-once by itself; a
worker owns a part only while it holds the part's lock (`owner_lock`), so two workers never
write one part, whatever the group's rebalances do. Readers open STORE itself and see every
part's committed files at once, through a checkpoint summed over the parts (`aggregate`):
its seq grows whenever any part commits (what "a new batch" means to the scheduler), its
position is every partition's offset.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import IO, Any

PARTS_DIR = "parts"
LOCK_FILE = "owner.lock"


def within_part(relative: str) -> str:
    """A manifest path of the aggregate (parts/<p>/events/...) as a part's own path."""
    if relative.startswith(PARTS_DIR + "/"):
        return relative.split("/", 2)[2]
    return relative


def part_names(parts_dir: Path) -> list[str]:
    """The parts present, in partition order."""
    if not parts_dir.is_dir():
        return []
    return sorted((p.name for p in parts_dir.iterdir() if p.name.isdigit()), key=int)


def _add(total: dict[str, Any], counters: dict[str, Any]) -> None:
    for name, value in counters.items():
        if isinstance(value, dict):
            _add(total.setdefault(name, {}), value)
        elif isinstance(value, int | float):
            total[name] = total.get(name, 0) + value


def aggregate(checkpoints: list[tuple[str, Any]]) -> dict[str, Any] | None:
    """The fields of one checkpoint standing for every part's (name, Checkpoint); None when
    no part has committed yet."""
    present = [(name, c) for name, c in checkpoints if c is not None]
    if not present:
        return None
    counters: dict[str, Any] = {}
    position: dict[str, int] = {}
    files: list[str] = []
    for name, c in present:
        _add(counters, c.counters)
        position.update(c.position or {})
        files.extend(f"{PARTS_DIR}/{name}/{f}" for f in c.files or ())
    watermarks = [c.watermark_ns for _, c in present if c.watermark_ns]
    return {
        "seq": sum(c.seq for _, c in present),
        "position": dict(sorted(position.items(), key=lambda kv: int(kv[0]))),
        "source": present[0][1].source,
        "watermark_ns": max(watermarks) if watermarks else None,
        "counters": counters,
        "files": sorted(files),
        # Per-part batch numbers do not add up to stream positions: a reader resuming after
        # a model's data starts from the stream's beginning (EventStore.position_after).
        "positions": [],
    }


class OwnerLock:
    """The exclusive right to write one part, held as an flock on the part's lock file: the
    kernel drops it when the holder dies, however it dies, so a worker killed mid-batch
    never keeps its partitions from the worker that takes them over."""

    def __init__(self, part_root: Path) -> None:
        self.path = part_root / "state" / LOCK_FILE
        self._handle: IO[bytes] | None = None

    def acquire(self, timeout: float) -> None:
        """Take the lock, waiting up to `timeout` s for a worker still letting go of it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(self.path, "ab")  # noqa: SIM115 - held for as long as the part is owned
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    handle.close()
                    raise TimeoutError(
                        f"part {self.path.parent.parent} is still written by another worker "
                        f"after {timeout:.0f} s (its lock {self.path} is held)"
                    ) from None
                time.sleep(0.05)  # polling the kernel's lock: there is nothing to wait on
        handle.truncate(0)
        handle.write(f"{os.getpid()}\n".encode())
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            fcntl.flock(self._handle.fileno(), fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
