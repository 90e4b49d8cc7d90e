"""Compaction: after any interleaving of commits, merges and crashes at any step, the
events read are the events committed, once each; a reader that connected before a merge
still reads them once; and nothing compaction did not write is ever deleted."""

from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from movierec.ingest import tables
from movierec.logformat.reference import REASON_CODE
from movierec.store import compaction
from movierec.store.compaction import Policy
from movierec.store.events import Checkpoint, EventStore
from tests.support.store import MIN, T0, write_watch

DAY = 1440 * MIN
FOREIGN = "events/watch/date=2025-01-01/notes.parquet"


class Model:
    """The store under test beside what was committed: user id -> batch, for watch rows
    (each row has its own user id) and quarantined lines."""

    def __init__(self, root: Path, policy: Policy) -> None:
        self.root, self.policy = root, policy
        self.store = EventStore(root, policy)
        self.store.recover()
        self.seq, self.next_id, self.now = 0, 1, 1000.0
        self.watch: dict[int, int] = {}
        self.quarantine: dict[int, int] = {}

    def write(self, days: list[int], rows: int) -> tuple[dict[int, int], dict[int, int]]:
        """Batch seq+1's files (not committed): watch rows on the given days, a rejected line."""
        seq, watch = self.seq + 1, {}
        batch = []
        for day in days:
            for _ in range(rows):
                batch.append((T0 + day * DAY + self.next_id * MIN % DAY, self.next_id, "a+2000", 1))
                watch[self.next_id] = seq
                self.next_id += 1
        write_watch(self.store, seq, batch)
        raw = [str(self.next_id).encode()]
        reason = np.array([REASON_CODE["malformed"]])
        origins = lambda r: pa.array([f"log@{i}" for i in r])  # noqa: E731
        q = tables.quarantine_table(np.array([0]), reason, raw, origins, seq)
        self.store.write_table("quarantine", seq, q)
        quarantined = {self.next_id: seq}
        self.next_id += 1
        return watch, quarantined

    def commit(self, days: list[int], rows: int) -> None:
        watch, quarantined = self.write(days, rows)
        self.seq += 1
        self.store.commit(Checkpoint(seq=self.seq, position=self.seq))
        self.watch.update(watch)
        self.quarantine.update(quarantined)

    def restart(self) -> None:
        self.store = EventStore(self.root, self.policy)
        checkpoint = self.store.recover()
        assert checkpoint.seq == self.seq and checkpoint.position == (self.seq or None)

    def read(self, con: duckdb.DuckDBPyConnection | None = None) -> tuple[list[int], list[int]]:
        con = con or self.store.connect()
        users = [r[0] for r in con.sql("SELECT user_id FROM watch ORDER BY 1").fetchall()]
        raw = con.sql("SELECT raw FROM quarantine").fetchall()
        return users, sorted(int(r[0]) for r in raw)

    def expected(self) -> tuple[list[int], list[int]]:
        return sorted(self.watch), sorted(self.quarantine)


def batch_rows(store: EventStore, after: int, upto: int) -> list[int]:
    """Watch users of batches after < seq <= upto, as an incremental reader reads them."""
    users: list[int] = []
    for path, whole in store.batch_files("events/watch", after, upto):
        table = pq.read_table(path)
        if not whole:
            seq = table.column("seq").to_numpy()
            table = table.filter(pa.array((seq > after) & (seq <= upto)))
        users += table.column("user_id").to_pylist()
    return sorted(users)


operation = st.one_of(
    st.tuples(st.just("commit"), st.lists(st.integers(0, 3), min_size=1, max_size=2,
                                          unique=True), st.integers(1, 3)),
    st.tuples(st.just("compact"), st.integers(1, 40)),
    st.tuples(st.just("crash"), st.sampled_from(["batch", "merge_written", "merge_installed"])),
)  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    ops=st.lists(operation, min_size=1, max_size=25),
    fan_in=st.integers(2, 4),
    max_level=st.integers(1, 3),
    seal_after=st.integers(1, 6),
    merges=st.integers(1, 3),
)
def test_any_interleaving_of_commits_merges_and_crashes_reads_each_event_once(
    tmp_path_factory: object,
    ops: list[tuple],
    fan_in: int,
    max_level: int,
    seal_after: int,
    merges: int,
) -> None:
    root = tmp_path_factory.mktemp("store")  # type: ignore[attr-defined]
    policy = Policy(fan_in, max_level, seal_after, grace_seconds=10.0, merges_per_call=merges)
    m = Model(root, policy)
    foreign = root / FOREIGN
    foreign.parent.mkdir(parents=True)
    foreign.write_bytes(b"not ours")
    for op in ops:
        if op[0] == "commit":
            m.commit(op[1], op[2])
        elif op[0] == "compact":
            m.now += op[1]
            before = m.store.connect()  # a reader that listed the files before the merges
            m.store.compact(now=m.now)
            assert m.read(before) == m.expected()
            before.close()
        else:
            crash(m, op[1])
            m.restart()
        assert m.read() == m.expected()
        assert foreign.read_bytes() == b"not ours"
    assert_consistent(m)


def crash(m: Model, step: str) -> None:
    """Stop at `step`, as a SIGKILL there would: what is on disk stays, nothing else runs."""
    if step == "batch":
        m.write([0], 2)  # a batch's files, never committed
        return
    checkpoint = m.store.checkpoint()
    if checkpoint is None:
        return
    merge = compaction.plan(checkpoint.files or [], checkpoint.seq, m.policy)
    if merge is None:
        return
    compaction.write(m.store, merge)
    if step == "merge_installed":
        m.now += 1
        compaction.install(m.store, merge, now=m.now)


def assert_consistent(m: Model) -> None:
    m.restart()
    checkpoint = m.store.checkpoint()
    listed = set(checkpoint.files or []) if checkpoint else set()
    retired = {r[0] for r in checkpoint.retired} if checkpoint else set()
    on_disk = {p.relative_to(m.root).as_posix() for p in m.root.rglob("*.parquet")}
    assert on_disk - listed - retired == {FOREIGN}  # no orphan, and the foreign file kept
    # After the grace, every retired file is gone and the files are only the listed ones.
    m.store.compact(now=m.now)
    compaction.expire(m.store, m.policy, now=m.now + m.policy.grace_seconds)
    checkpoint = m.store.checkpoint()
    if checkpoint is not None:
        on_disk = {p.relative_to(m.root).as_posix() for p in m.root.rglob("*.parquet")}
        assert on_disk == set(checkpoint.files or []) | {FOREIGN}
        assert not checkpoint.retired
    assert m.read() == m.expected()
    # An incremental reader's ranges partition the batches.
    for after, upto in ((0, m.seq), (0, m.seq // 2), (m.seq // 2, m.seq), (1, max(m.seq - 1, 1))):
        want = sorted(u for u, s in m.watch.items() if after < s <= upto)
        assert batch_rows(m.store, after, upto) == want, (after, upto)


def test_a_follow_mode_store_stays_at_a_bounded_number_of_files(tmp_path: Path) -> None:
    """A thousand batches into one partition: with fan-in 10 the manifest never holds more
    than nine files of each level."""
    m = Model(tmp_path, Policy())
    most = 0
    for _ in range(1000):
        m.commit([0], 1)
        m.store.compact(now=m.now)
        files = m.store.checkpoint().files  # type: ignore[union-attr]
        most = max(most, sum(1 for f in files if f.startswith("events/watch/")))
    assert most == 3 * 9  # at batch 999: nine files at each of levels 0, 1 and 2
    assert m.read() == m.expected()
    # Batch 1,000 completes ten of each level: three merges in each partition leave one
    # file each, six merges, two more than one call makes (lowest levels first).
    assert m.store.compact(now=m.now) == 2
    assert m.store.checkpoint().files == [  # type: ignore[union-attr]
        "events/watch/date=2025-01-01/c3-0000000001-0000001000.parquet",
        "quarantine/c3-0000000001-0000001000.parquet",
    ]


def test_a_store_from_before_manifests_is_listed_once_and_then_kept_by_its_manifest(
    tmp_path: Path,
) -> None:
    store = EventStore(tmp_path)
    store.recover()
    write_watch(store, 1, [(T0, 1, "a+2000", 0)])
    write_watch(store, 2, [(T0 + MIN, 2, "a+2000", 0)])  # never committed
    # The checkpoint as the code before manifests wrote it: no files, no retired.
    store.checkpoint_path.write_bytes(b'{"seq": 1, "position": 7, "counters": {}}')
    assert store.counts()["stored"]["watch"] == 1
    store = EventStore(tmp_path)
    assert store.recover().seq == 1
    write_watch(store, 2, [(T0 + MIN, 2, "a+2000", 0)])
    store.commit(Checkpoint(seq=2, position=9))
    assert store.checkpoint().files == [  # type: ignore[union-attr]
        "events/watch/date=2025-01-01/0000000001.parquet",
        "events/watch/date=2025-01-01/0000000002.parquet",
    ]
    assert store.counts()["stored"]["watch"] == 2
