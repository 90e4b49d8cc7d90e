"""The online figures over a store whose batches compaction merges between runs: each run
reads only the batches after its last, even out of merged files holding older ones too,
and the figures equal one run over the same batches never merged."""

from __future__ import annotations

from pathlib import Path

from movierec.online.figures import online_report
from movierec.store.compaction import Policy
from tests.support.online import SEC, Answer, OnlineWorld, Request
from tests.support.store import T0

ITEMS = ("a+1990", "b+1991", "c+1992")
BATCHES = 12


def grow(world: OnlineWorld, k: int) -> None:
    """Batch k: two requests of users 2k and 2k+1, answered; the first user watches one."""
    t = T0 + k * 3600 * SEC
    users = (2 * k + 1, 2 * k + 2)
    world.batch(
        [Request(t, u, items=ITEMS) for u in users],
        [(t + 60 * SEC, users[0], ITEMS[k % 3], 0)],
        answers=[Answer(u, "v1", ITEMS) for u in users],
    )


def test_a_rerun_after_merges_reads_each_new_line_once(tmp_path: Path) -> None:
    merged, plain = OnlineWorld(tmp_path / "merged"), OnlineWorld(tmp_path / "plain")
    merged.store.policy = Policy(fan_in=2, max_level=2, seal_after=1000, grace_seconds=0.0)
    state = tmp_path / "merged" / "state"
    ranges = []
    for k in range(BATCHES):
        grow(merged, k)
        grow(plain, k)
        assert (merged.store.compact() > 0) == (k % 2 == 1)  # every second batch merges
        ranges.append([w for _, w in merged.store.batch_files("events/watch", k, k + 1)])
        read = online_report(merged.store.root, merged.models, state=state)["read"]
        assert read["recommendation_lines"] == 2 and read["watch_and_rate_lines"] == 1, k
    # The newest batch sat inside a merged file with older ones (read through seq) at times.
    assert [False] in ranges
    files = merged.store.checkpoint().files  # type: ignore[union-attr]
    assert [f.rsplit("/", 1)[1] for f in files if f.startswith("events/watch/")] == [
        "c2-0000000001-0000000004.parquet",
        "c2-0000000005-0000000008.parquet",
        "c2-0000000009-0000000012.parquet",
    ]
    got = online_report(merged.store.root, merged.models, state=state, final=True)
    want = online_report(plain.store.root, plain.models, final=True)
    assert got["overall"] == want["overall"]
    assert want["overall"]["requests"] == 2 * BATCHES
    assert want["overall"]["followed"] == BATCHES
