"""Release records: typed round-trips (old history entries included), rollback chains, and
the invariant that production is always a registered version the last record names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.registry.releases import NoPreviousError, ReleaseRecord, previous, records
from movierec.registry.versions import Registry


def hand_made(root: Path, versions: list[str]) -> Registry:
    """A registry whose versions are directories with provenance.json and model/ (what
    `loads` asks for), without training anything."""
    for version in versions:
        (root / "versions" / version / "model").mkdir(parents=True)
        (root / "versions" / version / "provenance.json").write_text(json.dumps({"v": version}))
    state = {"production": None, "versions": [{"version": v, "model": "x"} for v in versions]}
    (root / "registry.json").write_text(json.dumps({**state, "history": []}))
    return Registry(root)


def test_a_record_round_trips_through_json() -> None:
    record = ReleaseRecord(
        "2026-01-01T00:00:00+00:00", "a", "b", "canary", "canary", "ok", {"p": 0.01}
    )
    assert ReleaseRecord.from_json(json.loads(json.dumps(record.to_json()))) == record
    assert record.to_json()["from"] == "a" and record.to_json()["to"] == "b"


def test_old_history_entries_read_as_trains_promotions_and_keeps() -> None:
    state = {
        "history": [
            {"time": "t1", "from": None, "to": "a", "reason": "won"},
            {"time": "t2", "from": "a", "to": "a", "reason": "no comparison"},
        ]
    }
    promoted, kept = records(state)
    assert (promoted.decision, promoted.decided_by, promoted.evidence) == ("promote", "train", {})
    assert (kept.decision, kept.to_version, kept.reason) == ("keep", "a", "no comparison")


def test_an_unknown_decision_or_no_decider_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown release decision"):
        ReleaseRecord("t", "a", "b", "yolo", "train", "")
    with pytest.raises(ValueError, match="decided_by"):
        ReleaseRecord("t", "a", "b", "promote", "", "")


def test_promote_and_keep_keep_their_old_signatures_and_take_evidence(tmp_path: Path) -> None:
    registry = hand_made(tmp_path, ["a", "b"])
    registry.promote("a", "first")
    registry.promote("b", "gate passed", evidence={"score": 0.3}, decided_by="train")
    registry.keep("refused", evidence={"checks": ["coverage"]})
    first, second, kept = registry.releases()
    assert (first.from_version, first.to_version, first.decided_by) == (None, "a", "train")
    assert second.evidence == {"score": 0.3} and second.decision == "promote"
    assert (kept.decision, kept.from_version, kept.to_version) == ("keep", "b", "b")
    assert kept.evidence == {"checks": ["coverage"]}


def test_rollbacks_walk_back_one_production_version_at_a_time(tmp_path: Path) -> None:
    registry = hand_made(tmp_path, ["a", "b", "c"])
    for version in ("a", "b", "c"):
        registry.promote(version, "trained")
    assert registry.rollback("bad c").to_version == "b"
    assert registry.production() == "b"
    assert registry.rollback("bad b").to_version == "a"
    before = registry.read()
    with pytest.raises(NoPreviousError):
        registry.rollback("nothing left")
    assert registry.read() == before


def test_a_rollback_skips_versions_that_no_longer_load(tmp_path: Path) -> None:
    registry = hand_made(tmp_path, ["a", "b", "c"])
    for version in ("a", "b", "c"):
        registry.promote(version, "trained")
    (tmp_path / "versions" / "b" / "provenance.json").unlink()
    record = registry.rollback("bad c")
    assert (record.from_version, record.to_version) == ("c", "a")


def test_a_version_rolled_back_from_is_not_a_target_until_promoted_again() -> None:
    history = [
        ReleaseRecord("t", None, "a", "promote", "train", ""),
        ReleaseRecord("t", "a", "b", "promote", "train", ""),
        ReleaseRecord("t", "b", "a", "rollback", "operator", ""),
        ReleaseRecord("t", "a", "a", "keep", "train", ""),
    ]
    with pytest.raises(NoPreviousError):
        previous(history, "a", lambda v: True)
    again = [*history, ReleaseRecord("t", "a", "b", "promote", "operator", "")]
    assert previous(again, "b", lambda v: True) == "a"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.sampled_from("abcd"), st.none()), max_size=25))
def test_production_is_always_registered_and_what_the_last_record_says(
    tmp_path_factory: pytest.TempPathFactory, steps: list[str | None]
) -> None:
    """Each step promotes a version or (None) rolls back; a refused rollback changes nothing."""
    registry = hand_made(tmp_path_factory.mktemp("r"), list("abcd"))
    for step in steps:
        if step is None:
            current = registry.production()
            try:
                record = registry.rollback("property")
            except NoPreviousError:
                continue
            assert record.to_version != current
        else:
            registry.promote(step, "property")
        state = registry.read()
        assert state["production"] in {v["version"] for v in state["versions"]}
        assert records(state)[-1].to_version == state["production"]
