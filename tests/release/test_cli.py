"""`movierec release`: the real command on hand-made registries (rollback chains, refusals,
history), and a rollback under continuous load against the real service on loopback."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path

from movierec.registry.versions import Registry
from tests.registry.test_releases import hand_made
from tests.serving.conftest import serving  # noqa: F401  (the fixture, used by name)
from tests.serving.test_swap import hammer
from tests.support.commands import movierec
from tests.support.serving import Running
from tests.support.waiting import wait_until


def release(models: Path, *args: str) -> tuple[int, dict | None, str]:
    done = movierec("release", "--models", str(models), *args)
    return done.returncode, json.loads(done.stdout) if done.stdout.strip() else None, done.stderr


def test_rollback_chain_then_a_loud_refusal_that_changes_nothing(tmp_path: Path) -> None:
    registry = hand_made(tmp_path, ["a", "b", "c"])
    for version in ("a", "b", "c"):
        registry.promote(version, "trained")
    code, line, _ = release(tmp_path, "--rollback")
    assert code == 0 and line is not None
    assert (line["action"], line["from"], line["to"], line["decided_by"]) == (
        "rollback",
        "c",
        "b",
        "operator",
    )
    assert release(tmp_path, "--rollback")[1]["to"] == "a"  # type: ignore[index]
    before = (tmp_path / "registry.json").read_bytes()
    code, line, error = release(tmp_path, "--rollback")
    assert code == 2 and line is None and "nothing to roll back to" in error
    assert (tmp_path / "registry.json").read_bytes() == before


def test_operator_promotion_and_history(tmp_path: Path) -> None:
    registry = hand_made(tmp_path, ["a", "b"])
    registry.promote("a", "trained", evidence={"ndcg": 0.2})
    code, line, _ = release(tmp_path, "--promote", "b", "--reason", "hotfix")
    assert code == 0 and line is not None
    assert (line["decision"], line["to"], line["reason"], line["decided_by"]) == (
        "promote",
        "b",
        "hotfix",
        "operator",
    )
    assert registry.production() == "b"
    code, listing, _ = release(tmp_path, "--history")
    assert code == 0 and listing is not None and listing["production"] == "b"
    assert [(r["to"], r["decided_by"]) for r in listing["records"]] == [
        ("a", "train"),
        ("b", "operator"),
    ]
    assert listing["records"][0]["evidence"] == {"ndcg": 0.2}


def test_refusals_exit_2_and_change_nothing(tmp_path: Path) -> None:
    registry = hand_made(tmp_path, ["a"])
    registry.promote("a", "trained")
    before = (tmp_path / "registry.json").read_bytes()
    code, _, error = release(tmp_path, "--promote", "nope")
    assert code == 2 and "unknown version 'nope'" in error
    code, _, error = release(tmp_path, "--rollback", "--history")
    assert code == 2 and "exactly one" in error
    code, _, error = release(tmp_path / "elsewhere", "--history")
    assert code == 2 and "no registry" in error
    assert (tmp_path / "registry.json").read_bytes() == before
    assert not (tmp_path / "elsewhere").exists()


def test_rollback_under_load_fails_no_request(serving: Running) -> None:  # noqa: F811
    registry = Registry(serving.models)
    first = registry.production()
    second = next(v for v in registry.latest_by_model().values() if v != first)
    stop = threading.Event()
    statuses: Counter = Counter()
    versions: Counter = Counter()
    errors: list[str] = []
    clients = [
        threading.Thread(
            target=hammer, args=(serving.port, stop, statuses, versions, errors, 1 + 131 * i)
        )
        for i in range(4)
    ]
    for client in clients:
        client.start()
    try:
        assert release(serving.models, "--promote", second)[0] == 0
        wait_until(lambda: serving.service.snapshot.version == second, timeout=60)
        seen = versions[second]
        wait_until(lambda: versions[second] > seen + 50, timeout=30, what="answers from second")
        started = time.monotonic()
        code, line, _ = release(serving.models, "--rollback", "--reason", "live test")
        assert code == 0 and line is not None and line["to"] == first
        command = time.monotonic() - started
        wait_until(lambda: serving.service.snapshot.version == first, timeout=60)
        swapped = time.monotonic() - started
        back = versions[first]
        wait_until(lambda: versions[first] > back + 50, timeout=30, what="answers from first")
    finally:
        stop.set()
        for client in clients:
            client.join()
    assert errors == []
    assert set(statuses) == {200} and sum(statuses.values()) > 200
    print(
        f"rollback under load: {dict(statuses)}, {dict(versions)}, "
        f"command {command:.2f} s, serving the previous version {swapped:.2f} s after its start"
    )
