"""conversion@30m: the slow reference on a hand-made store, the simulator's tally on
hand-made events, and the two against each other on simulated runs — exactly on a clean
log against our real service, within the recorded bound on a dirty one."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from movierec.evaluation.pipeline import EvaluateConfig, evaluate_registry
from movierec.ingest.runner import IngestConfig, Ingestor
from movierec.registry.versions import Registry
from movierec.store.events import Checkpoint, EventStore
from movierec.store.schema import RECOMMENDATION_SCHEMA
from movierec_sim.api import SiteApiServer
from movierec_sim.conversion import ConversionTally
from movierec_sim.faults import RECOMMENDATION, WATCH, FaultConfig, LineFacts
from movierec_sim.world import World, WorldConfig
from tests.movierec_sim.conftest import simulate
from tests.support.conversion import conversion_at_30m
from tests.support.simulated_run import SiteRun, register_random_lists
from tests.support.store import T0, write_watch

S = 10**9  # ns a second


def write_requests(
    store: EventStore, seq: int, rows: list[tuple[int, int, int, list[str]]]
) -> None:
    """(time ns, user, status, items) recommendation rows, all on T0's date, as batch seq."""
    records = [
        {
            "time": time_ns, "user_id": user, "service": "127.0.0.1:8082", "status": status,
            "latency_ms": 12, "result": ", ".join(items) if status == 200 else "error",
            "items": items if status == 200 else [],
        }
        for time_ns, user, status, items in rows
    ]  # fmt: skip
    table = pa.Table.from_pylist(records, schema=RECOMMENDATION_SCHEMA)
    store.write_table("events/recommendation/date=2025-01-01", seq, table)


def test_the_reference_on_a_hand_made_store(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "store")
    store.recover()  # as ingestion starts: the state folder the commit writes into
    a, b, c = "alien+1979", "brazil+1985", "chinatown+1974"
    write_requests(
        store,
        1,
        [
            (T0, 1, 200, [a, b]),  # watched exactly 1800 s later: followed
            (T0, 2, 200, [a]),  # watched 1801 s later: not
            (T0, 3, 200, [a]),  # watched before the request: not
            (T0, 4, 200, [a]),  # only another user (5) watches it: not
            (T0, 6, 503, []),  # not answered
            (T0, 7, 200, [a, b]),  # watches a movie not listed: not
            (T0 + S // 2, 8, 200, [a]),  # watched in its own second, before it, and 1800.5 s on
            (T0, 9, 200, [c]),  # the user's later visit watches c: followed
            (T0 + 600 * S, 9, 200, [a]),  # that later visit's own list: not
        ],
    )
    write_watch(
        store,
        1,
        [
            (T0 + 1800 * S, 1, a, 0),
            (T0 + 1801 * S, 2, a, 0),
            (T0 - 60 * S, 3, a, 0),
            (T0 + 60 * S, 5, a, 0),
            (T0 + 60 * S, 7, c, 0),
            (T0, 8, a, 0),
            (T0 + 1801 * S, 8, a, 0),
            (T0 + 900 * S, 9, c, 0),
            (T0 + 960 * S, 9, c, 1),
        ],
    )
    store.commit(Checkpoint(seq=1))
    result = conversion_at_30m(store.root)
    assert (result.answered, result.followed) == (8, 2)
    assert result.by_date == {"2025-01-01": [8, 2]}
    assert result.share == 0.25


def facts(kind: int, second: int, user: int, movie: str = "") -> LineFacts:
    return LineFacts(kind, 1_000_000 + second, user + 1, movie, "")


def test_the_tally_counts_later_visits_edges_and_only_written_lines() -> None:
    tally = ConversionTally(1_000_000, {"m0": 0, "m1": 1, "m2": 2})
    # Users 0 and 1 ask at second 100 (lists [0, 1] and [2]); user 0 asks again at 400.
    tally.requests(0, np.array([0, 1]), np.array([100, 100]), np.array([[0, 1], [2, -1]]))
    tally.requests(300, np.array([0]), np.array([400]), np.array([[2, -1]]))
    # User 0's second visit watches movie 1 of the first list; user 1 starts 1801 s late.
    tally.sessions(np.array([0, 1]), np.array([1, 2]), np.array([500, 1901]))
    assert (tally.to_json(10_000)["answered"], tally.to_json(10_000)["followed"]) == (3, 1)
    # Its watch line at 500 is not written before the horizon passes it.
    assert tally.to_json(500)["followed"] == 0 and tally.to_json(501)["followed"] == 1
    # A session starting exactly 1800 s after a request follows it.
    tally.sessions(np.array([0]), np.array([2]), np.array([2200]))
    assert tally.to_json(10_000)["followed"] == 2
    # Dirt: lost answered lines (one of them followed) and a lost watch line that could
    # have followed one; a lost line of an unanswered request or another second is no loss.
    tally.lost_line(facts(RECOMMENDATION, 100, 0))
    tally.lost_line(facts(RECOMMENDATION, 100, 1))
    tally.lost_line(facts(RECOMMENDATION, 101, 1))
    tally.lost_line(facts(RECOMMENDATION, 100, 5))
    tally.lost_line(facts(WATCH, 700, 1, "m2"))
    tally.lost_line(facts(WATCH, 700, 1, "m0"))
    assert tally.to_json(10_000)["lost_at_most"] == {
        "answered": 2,
        "answered_followed": 1,
        "watch_lines": 2,
        "watch_follows": 1,
    }
    # Forgotten once no new session can follow them; the counts stay.
    tally.requests(4000, np.empty(0, np.int64), np.empty(0, np.int64), np.empty((0, 1), np.int64))
    assert len(tally.pending.user) == 0
    done = tally.to_json(10_000)
    assert (done["answered"], done["followed"]) == (3, 2)
    assert done["by_day"] == [
        {"day": 0, "date": "1970-01-12", "answered": 3, "followed": 2, "share": 0.666667}
    ]


@pytest.fixture
def site(simulated_run: SiteRun) -> SiteRun:
    return simulated_run


def test_the_ledger_equals_the_log_on_a_clean_run_against_our_service(site: SiteRun) -> None:
    ledger = site.conversion
    assert ledger["answered"] == site.ledger["recommendation_calls"]["by_status"]["200"] > 500
    reference = conversion_at_30m(site.store)
    assert (reference.answered, reference.followed) == (ledger["answered"], ledger["followed"])
    assert reference.by_date == {
        d["date"]: [d["answered"], d["followed"]] for d in ledger["by_day"]
    }
    # The per-visit figure misses later visits' follows, never counts more.
    assert 0 < site.ledger["online"]["service"]["followed"] <= ledger["followed"]
    assert ledger["lost_at_most"] == dict.fromkeys(ledger["lost_at_most"], 0)


def test_a_random_lists_arm_beside_the_trained_model_is_worse(
    site: SiteRun, tmp_path: Path
) -> None:
    models = tmp_path / "models"
    shutil.copytree(site.models, models)
    production = Registry(models).production()
    assert production is not None
    version = register_random_lists(site.store, models, seed=1)
    registry = Registry(models)
    assert registry.production() == production  # registered, not promoted
    assert registry.latest_by_model()["random"] == version
    offline = evaluate_registry(EvaluateConfig(store=str(site.store), models_dir=str(models)))
    scores = {kind: report["ndcg@20"] for kind, report in offline["models"].items()}
    # Every trained kind beats random lists; the one in production by far.
    assert scores["random"] < min(v for k, v in scores.items() if k != "random")
    assert scores["random"] < 0.5 * scores[registry.provenance(production)["model"]]


def ingest(log: Path, store: Path, world: World) -> None:
    with SiteApiServer(world, port=0) as api:
        Ingestor(
            IngestConfig(
                source=f"file://{log}", store=str(store), api=api.url, api_rate_limit=5000.0
            )
        ).run()


@pytest.mark.parametrize("faults", [0.0, 0.08])
def test_a_dirty_log_falls_short_of_the_ledger_by_at_most_what_dirt_took(
    tmp_path: Path, service, faults: float
) -> None:
    world = World(WorldConfig(users=400, movies=40, seed=3))
    # The same 25 movies for everyone: more than the 20 a user scans, and a user who picks
    # the 23rd on their own follows the logged list all the same.
    listed = ",".join(world.movie_ids[:25]).encode()
    url = service(lambda path: (200, listed, 0.0))
    run = simulate(tmp_path, world, service=url, days=3, seed=5, faults=FaultConfig.build(faults))
    log = sorted(tmp_path.glob("log-*"))[-1]
    ingest(log, tmp_path / "store", world)
    ledger = run.ledger["online"]["conversion@30m"]
    lost = ledger["lost_at_most"]
    reference = conversion_at_30m(tmp_path / "store")
    assert ledger["answered"] - lost["answered"] <= reference.answered <= ledger["answered"]
    least = ledger["followed"] - lost["answered_followed"] - lost["watch_follows"]
    assert least <= reference.followed <= ledger["followed"]
    if faults == 0:
        assert (reference.answered, reference.followed) == (ledger["answered"], ledger["followed"])
    else:
        assert lost["answered"] > 0 and lost["watch_follows"] > 0
