"""Canary releases on a live site: the real service on loopback, the simulated site's users
calling it, ingestion into a store and the canary's decision step, one continuous site for
the three canaries, in this order and with known right answers:

    random lists   against popularity: they convert worse, aborted for conversion
    item-kNN       against popularity: it converts better (it learns each user's taste,
                   popularity shows everyone the same list), promoted; production is it
    slow           against item-kNN: every answer comes after the site's 600 ms timeout,
                   aborted for latency and timeouts before any conversion is judged

and the release records tell that story: canary, abort; canary, promote; canary, abort;
each with its evidence. The figures each took are printed (docs/operations.md quotes them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from movierec.registry.versions import Registry
from movierec.release.canary import running
from movierec.release.canary_rules import CanaryConfig
from tests.support.canary_site import CanarySite

# The site's few thousand users ask a few hundred times an hour: small enough bounds that
# each canary is decided within a few simulated hours.
CONFIG = CanaryConfig(share=0.3, min_requests=150, max_requests=3000, min_latency_requests=30)
MEASURED: dict[str, dict] = {}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CanarySite]:
    site = CanarySite.open(tmp_path_factory.mktemp("canary"))
    try:
        yield site
    finally:
        site.close()
        print("\ncanary figures:", json.dumps(MEASURED))


def test_random_lists_are_aborted_for_their_conversion(site: CanarySite) -> None:
    production = site.versions["popularity"]
    outcome = site.run_canary("random", CONFIG)
    MEASURED["random"] = outcome.figures()
    decision = outcome.decision
    assert decision.decision == "abort", decision.to_json()
    assert decision.evidence["rule"] == "conversion"
    assert "converts worse" in decision.reasons[0]
    assert decision.evidence["comparison"]["verdict"] == "worse"
    canary = decision.evidence["arms"]["canary"]
    assert canary["version"] == site.versions["random"]
    assert canary["requests"] >= CONFIG.min_requests
    assert Registry(site.models).production() == production
    assert running(site.models) is None


def test_a_better_candidate_is_promoted(site: CanarySite) -> None:
    outcome = site.run_canary("itemknn", CONFIG)
    MEASURED["itemknn"] = outcome.figures()
    decision = outcome.decision
    assert decision.decision == "promote", decision.to_json()
    assert decision.evidence["comparison"]["verdict"] == "better"
    arms = decision.evidence["arms"]
    assert arms["canary"]["conversion"] > arms["control"]["conversion"]
    assert Registry(site.models).production() == site.versions["itemknn"]
    # The running service follows the pointer, as for any promotion.
    snapshot = site.service.snapshot
    assert snapshot is not None and snapshot.version == site.versions["itemknn"]
    assert running(site.models) is None


def test_a_slow_candidate_is_aborted_for_latency_and_timeouts(site: CanarySite) -> None:
    production = site.versions["itemknn"]
    assert Registry(site.models).production() == production, "the promotion test runs first"
    outcome = site.run_canary("slow", CONFIG)
    MEASURED["slow"] = outcome.figures()
    decision = outcome.decision
    assert decision.decision == "abort", decision.to_json()
    assert decision.evidence["rule"] == "health"
    canary, control = decision.evidence["arms"]["canary"], decision.evidence["arms"]["control"]
    assert canary["latency_p99_ms"] > CONFIG.max_p99_ms
    assert canary["timeout_rate"] == 1.0 and control["timeout_rate"] == 0.0
    assert any("p99 latency" in reason for reason in decision.reasons)
    assert any("timeouts" in reason for reason in decision.reasons)
    assert CONFIG.min_latency_requests <= canary["requests"] < CONFIG.min_requests
    assert Registry(site.models).production() == production


def test_the_release_records_tell_the_story(site: CanarySite) -> None:
    records = [r for r in Registry(site.models).releases() if r.decided_by != "train"]
    story = [(r.decision, r.evidence.get("candidate", r.to_version)) for r in records]
    v = site.versions
    assert story == [
        ("canary", v["random"]), ("abort", v["random"]),
        ("canary", v["itemknn"]), ("promote", v["itemknn"]),
        ("canary", v["slow"]), ("abort", v["slow"]),
    ]  # fmt: skip
    for record in records:
        assert record.evidence and record.reason
        if record.decision == "canary":
            assert record.decided_by == "operator" and record.from_version == record.to_version
            assert record.evidence["share"] == CONFIG.share
            assert record.evidence["test"].startswith("canary of")
        else:
            assert record.decided_by == "canary"
            assert record.evidence["arms"]["canary"]["requests"] > 0
            assert record.evidence["experiment"].startswith("exp-")
    promote = records[3]
    assert (promote.from_version, promote.to_version) == (v["popularity"], v["itemknn"])
