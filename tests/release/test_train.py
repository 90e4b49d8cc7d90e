"""`movierec train` end to end, twice on a small simulated site: the first run promotes
its winner as training always did; the second, limited to the popularity baseline, is
refused by the gate, says so (exit 4, stderr), and production stays, with the evidence
in the summary, the registry's history and beside the registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from movierec.ingest.runner import IngestConfig, Ingestor
from movierec.registry.versions import Registry
from movierec.release.train import CANDIDATE_REFUSED, GATES_DIR
from movierec_sim.api import SiteApiServer
from movierec_sim.world import World, WorldConfig
from tests.support.commands import movierec
from tests.support.simulated import simulate_into


@pytest.fixture(scope="module")
def small_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """About a month of a 300-user, 100-movie site, ingested with its catalogue."""
    root = tmp_path_factory.mktemp("small-site")
    world = World(WorldConfig(users=300, movies=100, seed=11))
    simulate_into(f"file://{root / 'log'}", world, 60_000, 0.0)
    with SiteApiServer(world, port=0) as api:
        Ingestor(
            IngestConfig(source=f"file://{root / 'log'}", store=str(root / "store"), api=api.url)
        ).run()
    return root / "store"


def test_train_twice_the_gate_keeps_a_worse_candidate_out(
    small_store: Path, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    common = ("train", "--store", str(small_store), "--models", str(models), "--quiet")
    first = movierec(*common, "--budget", "0")
    assert first.returncode == 0, first.stderr
    promoted = json.loads(first.stdout)
    assert promoted["promoted"] and promoted["winner"] != "popularity"
    assert promoted["gate"] == {
        "judged": False,
        "why": "no production model yet: the winner is promoted without comparison",
    }
    production = promoted["production"]

    second = movierec(*common, "--budget", "0", "--model", "popularity", "--gate-margin", "0.05")
    assert second.returncode == CANDIDATE_REFUSED, second.stderr
    refused = json.loads(second.stdout)
    candidate = refused["versions"]["popularity"]
    assert f"candidate {candidate} (popularity) not promoted" in second.stderr
    assert f"production {production} stays" in second.stderr
    assert "failed: score" in second.stderr
    assert not refused["promoted"] and refused["production"] == production
    # The summary keeps every field it had and gains the gate's evidence.
    assert {"winner", "reason", "versions", "search", "offline", "split"} <= set(refused)
    gate = refused["gate"]
    assert gate["judged"] and not gate["passed"] and gate["scores"]["margin"] == 0.05
    assert gate["comparison"]["kind"] == "recipe"  # production learned from the same data
    assert gate["scores"]["candidate"] < 0.95 * gate["scores"]["production"]
    assert [c["name"] for c in gate["checks"]] == [
        "score",
        "snapshot_build",
        "full_lists",
        "answer_delay",
        "coverage",
    ]
    registry = Registry(models)
    assert registry.production() == production
    last = registry.read()["history"][-1]
    assert last["from"] == last["to"] == production and last["reason"] == refused["reason"]
    assert last["decision"] == "keep" and last["decided_by"] == "gate"
    assert last["evidence"]["passed"] is False and last["evidence"]["candidate"] == candidate
    kept = json.loads((models / GATES_DIR / f"{candidate}.json").read_text())
    assert kept["candidate"] == candidate and kept["passed"] is False
