"""Adult movies are kept from minors and users of unknown age, whatever the answer's source
or arm: a real loader reads a real catalogue cache beside tiny models fitted on the planted
data (tests/models/contract.py), whose lists put movies this catalogue marks adult first.
Then the simulated site, whose API marks 2% of its movies adult, through the real server."""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families

from movierec.audit.safety import safety_section
from movierec.catalog.cache import OK, CacheEntry, CatalogCache
from movierec.catalog.reader import CatalogueUsers, MovieAdultFlags
from movierec.catalog.records import MovieRecord, UserRecord
from movierec.http.server import ServerThread
from movierec.ids import MAX_USER_ID
from movierec.models.popularity import PopularityRecommender
from movierec.registry.experiments import Arm, Experiments
from movierec.serving.app import RecommendationService
from movierec.serving.freshness import Freshness
from movierec.serving.loader import ModelLoader
from movierec.serving.safety import AdultRule
from movierec.serving.snapshot import DEPTH, Demographics, Snapshot
from movierec.store.events import EventStore
from tests.models.contract import NOW_NS, planted_data
from tests.support.serving import HandMadeModels, Running, hand_made_models, request
from tests.support.simulated import SimulatedStore
from tests.support.waiting import wait_until

MINOR, GROWN, NOT_CATALOGUED, NO_AGE = 1000, 1003, 1006, 1009  # rows 0-3 of the model
MINOR_STRANGER, WOMAN_OF_40 = 5_000_003, 5_000_001  # catalogued, unknown to the model
STRANGER = 7_777_777  # nobody knows anything about them: the popular list
# The first movies of those users' lists (tests/serving/test_answers.py shows the data).
ADULT = frozenset(f"movie+{i}+{1990 + i}" for i in (0, 5, 7, 15, 24))
RESTRICTED = (MINOR, NOT_CATALOGUED, NO_AGE, MINOR_STRANGER, STRANGER)
UNSAID = "movie+39+2029"  # the API did not say whether it is adult: held back like one
HELD = ADULT | {UNSAID}


def movie_record(movie_id: str, adult: bool | None) -> MovieRecord:
    return MovieRecord(movie_id, "T", None, (), *[None] * 7, adult, None)


def write_catalogue(path: Path, adult: frozenset[str], known: int = 40) -> Path:
    """The first `known` planted movies (adult or not; the 40th one the API did not say of)
    and the users."""
    cache = CatalogCache(path)
    movies = [f"movie+{i}+{1990 + i}" for i in range(known)]
    users = [
        UserRecord(MINOR, 15, "M", "writer"),
        UserRecord(GROWN, 30, "M", "writer"),
        UserRecord(NO_AGE, None, "M", "writer"),
        UserRecord(MINOR_STRANGER, 15, "F", "writer"),
        UserRecord(WOMAN_OF_40, 40, "F", "writer"),
    ]
    cache.write(
        [CacheEntry("movie", m, OK, movie_record(m, m in adult if m != UNSAID else None))
         for m in movies]
        + [CacheEntry("user", u.user_id, OK, u) for u in users]
    )  # fmt: skip
    cache.close()
    return path


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> HandMadeModels:
    return hand_made_models(tmp_path_factory.mktemp("models"), planted_data())


def loaded(models: Path, catalogue: Path | None, **settings: bool) -> RecommendationService:
    """A service whose loader read the catalogue and installed production, as serve does."""
    service = RecommendationService(models, sample=0.0, **settings)
    loader = ModelLoader(service, catalogue=catalogue)
    if catalogue is not None:
        loader.read_catalogue()
    assert loader.check()
    return service


@pytest.fixture
def service(models: HandMadeModels, tmp_path: Path) -> Iterator[RecommendationService]:
    service = loaded(models.registry.root, write_catalogue(tmp_path / "catalog.sqlite", ADULT))
    yield service
    service.answers.close()


def answer(service: RecommendationService, user: int) -> list[str]:
    response = service.handle(request(f"/recommend/{user}"))
    assert response.status == 200, response.body
    return response.body.decode().split(",")


def unfiltered(service: RecommendationService, user: int) -> list[str]:
    """What the user would have got without the filter (Snapshot.body is the unfiltered
    answer, from the list RecommendationService.answer picks)."""
    snapshot = service.snapshot
    assert snapshot is not None
    return snapshot.body(ranked_of(service, snapshot, user)).decode().split(",")


def ranked_of(service: RecommendationService, snapshot: Snapshot, user: int) -> np.ndarray:
    fresh = service.fresh.get(user)
    if fresh is not None and fresh[0] == snapshot.version:
        return fresh[1]
    row = snapshot.row(user)
    if row >= 0:
        return snapshot.lists[row]
    segment = service.demographics.segment(user)
    return snapshot.segments[segment] if segment is not None else snapshot.popular  # type: ignore[index]


def test_minors_and_unknown_ages_never_get_an_adult_movie_and_adults_do(
    service: RecommendationService,
) -> None:
    filtered = 0
    for user in (*RESTRICTED, GROWN, WOMAN_OF_40):
        before = unfiltered(service, user)
        assert before[0] in ADULT, user  # the data puts an adult movie first for everyone
        got = answer(service, user)
        if user in RESTRICTED:
            assert not set(got) & HELD and len(got) == len(set(got)) == 20, user
            # The rest keeps its order (the planted lists hold 32 or 40 items: no top-up).
            assert got == [m for m in unfiltered_depth(service, user) if m not in HELD][:20]
            filtered += len(set(before) & HELD)
        else:
            assert got == before, user
    assert service.metrics.answers == {"model": 4, "segment": 2, "popular": 1}
    assert service.metrics.restricted_answers == {"minor": 2, "unknown_age": 3}
    assert service.metrics.adult_filtered == filtered
    metrics = service.metrics.render().decode()
    assert f"movierec_adult_filtered_total {filtered}.0" in metrics
    assert 'movierec_restricted_answers_total{age="minor"} 2.0' in metrics
    assert (
        "movierec_adult_filter_enforced 1.0" in metrics and "movierec_adult_movies 5.0" in metrics
    )


def unfiltered_depth(service: RecommendationService, user: int) -> list[str]:
    """Every item of the user's ranked list, not only its first 20."""
    snapshot = service.snapshot
    assert snapshot is not None
    return [snapshot.items[i].decode() for i in ranked_of(service, snapshot, user) if i >= 0]


def test_the_setting_lets_unknown_ages_see_adult_movies_but_never_minors(
    models: HandMadeModels, tmp_path: Path
) -> None:
    catalogue = write_catalogue(tmp_path / "catalog.sqlite", ADULT)
    service = loaded(models.registry.root, catalogue, adult_for_unknown_age=True)
    for user in (NOT_CATALOGUED, NO_AGE, STRANGER):
        assert answer(service, user) == unfiltered(service, user)
    for user in (MINOR, MINOR_STRANGER):
        assert not set(answer(service, user)) & ADULT
    assert service.metrics.restricted_answers == {"minor": 2}
    health = orjson.loads(service.handle(request("/healthz")).body)
    assert health["safety"] == {
        "adult_filter": "enforced",
        "adult_movies": 5,
        "cleared_movies": 34,  # 40 movies: 5 adult, and one the API did not say of
        "minimum_age": 18,
        "unknown_age": "allowed",
    }


def test_a_fresh_list_is_filtered_too(service: RecommendationService, tmp_path: Path) -> None:
    before = unfiltered(service, MINOR)
    watched_now = before[2]  # not adult: the adult movie stays first in the fresh list
    when = datetime.fromtimestamp(NOW_NS / 1e9 + 60, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    log = tmp_path / "log"
    log.write_text(f"{when},{MINOR},GET /data/m/{watched_now}/0.mpg\n")
    freshness = Freshness(service, f"file://{log}", poll=0.05).start()
    try:
        wait_until(lambda: MINOR in service.fresh, timeout=30, what="the fresh list")
    finally:
        freshness.stop()
    fresh = unfiltered(service, MINOR)
    assert fresh != before and watched_now not in fresh and set(fresh) & ADULT
    got = answer(service, MINOR)
    assert service.metrics.answers == {"fresh": 1}
    assert not set(got) & ADULT and len(set(got)) == 20 and watched_now not in got


def test_every_experiment_arm_is_filtered(tmp_path: Path) -> None:
    models = hand_made_models(tmp_path / "models", planted_data())
    popular = models.add(PopularityRecommender())  # its list starts with an adult movie
    Experiments(models.registry.root).start(
        [Arm("control", models.version, 0.5), Arm("popular", popular, 0.5)],
        known_versions={models.version, popular},
    )
    service = RecommendationService(models.registry.root, sample=0.0)
    loader = ModelLoader(service, catalogue=write_catalogue(tmp_path / "catalog.sqlite", ADULT))
    loader.read_catalogue()
    assert loader.check() and loader.check_experiment() and service.plan is not None
    experiment = service.plan.experiment
    arms = set()
    for user in [*RESTRICTED, *range(2_000_000, 2_000_040)]:  # strangers: unknown age
        response = service.handle(request(f"/recommend/{user}"))
        arm = experiment.arm_of(user)
        arms.add(arm.name)
        unfiltered_body = service.plan.snapshots[arm.name].body(
            ranked_of(service, service.plan.snapshots[arm.name], user)
        )
        assert set(unfiltered_body.decode().split(",")) & ADULT  # the filter had work to do
        got = response.body.decode().split(",")
        assert not set(got) & ADULT and len(set(got)) == 20, (user, arm.name)
    assert arms == {"control", "popular"}


def test_a_list_the_filter_shortens_is_topped_up_with_what_the_user_has_not_seen(
    models: HandMadeModels, tmp_path: Path
) -> None:
    snapshot = models.snapshot()
    ranked = [snapshot.items[i].decode() for i in snapshot.lists[snapshot.row(MINOR)] if i >= 0]
    assert len(ranked) == 32  # every movie but the 8 the minor watched
    adult = frozenset(ranked[:15])  # 17 unseen movies are left: 3 seen ones must top up
    service = loaded(models.registry.root, write_catalogue(tmp_path / "c.sqlite", adult))
    got = answer(service, MINOR)
    seen = {snapshot.items[i].decode() for i in snapshot.history(MINOR)}
    left = [m for m in ranked[15:] if m != UNSAID]
    assert len(got) == len(set(got)) == 20 and not set(got) & (adult | {UNSAID})
    assert got[: len(left)] == left and set(got[len(left) :]) <= seen
    # The popular fallback of a stranger: topped up with the most popular movies allowed.
    popular = [snapshot.items[i].decode() for i in snapshot.popular if i >= 0]
    allowed = [m for m in popular if m not in adult and m != UNSAID]
    assert answer(service, STRANGER) == allowed[:20]
    # Fewer than 20 movies allowed at all: all of them, once each (not the unsaid one).
    every = frozenset(f"movie+{i}+{1990 + i}" for i in range(28))
    service = loaded(models.registry.root, write_catalogue(tmp_path / "d.sqlite", every))
    got = answer(service, MINOR)
    assert sorted(got) == sorted({f"movie+{i}+{1990 + i}" for i in range(28, 39)})


def test_without_a_catalogue_the_filter_is_unenforced_and_says_so(
    models: HandMadeModels, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    service = RecommendationService(models.registry.root, sample=0.0)
    loader = ModelLoader(service, poll=0.05)
    with caplog.at_level(logging.WARNING, "movierec.serving"):
        loader.start()
    try:
        wait_until(lambda: service.snapshot is not None, what="the model to load")
        server = ServerThread(service.http_server()).start()
        try:
            running = Running(service, loader, server, models.registry.root, tmp_path, None)
            health = orjson.loads(running.get("/healthz")[1])
            metrics = running.get("/metrics")[1].decode()
            status, body, _ = running.get(f"/recommend/{MINOR}")
        finally:
            server.stop()
    finally:
        loader.stop()
    assert "adult movies are not kept from minors: no catalogue" in caplog.text
    assert health["safety"]["adult_filter"] == "unenforced: no catalogue (serve has no --store)"
    assert health["safety"]["adult_movies"] is None
    assert gauge(metrics, "movierec_adult_filter_enforced") == 0
    assert status == 200 and body.decode().split(",")[0] in ADULT  # it cannot know better

    # With a catalogue to read (serve --store) but none read yet (not written, then
    # unreadable), the filter waits: restricted users get a 503 saying why, and a user of
    # unknown age gets a list only when the setting lets them; each reason is said once.
    path = tmp_path / "catalog.sqlite"
    loader = ModelLoader(service, catalogue=path)
    caplog.clear()
    with caplog.at_level(logging.WARNING, "movierec.serving"):
        loader.read_catalogue()
        loader.read_catalogue()
    assert caplog.text.count("not written yet") == 1
    assert service.adult_rule.state.startswith("waiting: catalogue not written yet")
    waited = service.handle(request(f"/recommend/{MINOR}"))
    assert waited.status == 503
    assert b"adult filter waiting: catalogue not written yet" in waited.body
    service.adult_for_unknown_age = True  # nobody's age is known yet: that lets everyone by
    assert answer(service, MINOR)[0] in ADULT
    service.adult_for_unknown_age = False
    path.write_bytes(b"not a catalogue" * 100)
    loader.read_catalogue()
    assert service.adult_rule.state.startswith("waiting: catalogue unreadable")
    # Once read, a catalogue that turns unreadable keeps the adult movies it gave.
    path.unlink()
    write_catalogue(path, ADULT)
    loader.read_catalogue()
    assert service.adult_rule.enforced and service.metrics.adult_enforced
    path.write_bytes(b"not a catalogue" * 100)
    loader.read_catalogue()
    assert service.adult_rule.adult == ADULT and "unreadable" in (service.adult_rule.note or "")
    assert not set(answer(service, MINOR)) & ADULT
    service.answers.close()


def test_a_catalogue_written_after_the_start_is_enforced_at_the_next_poll(
    models: HandMadeModels, tmp_path: Path
) -> None:
    service = RecommendationService(models.registry.root, sample=0.0)
    path = tmp_path / "catalog.sqlite"
    # An hour between reads once enforced: only the quick look of an unenforced filter
    # can pick the new file up within the test's deadline.
    loader = ModelLoader(service, poll=0.05, catalogue=path, catalogue_every=3600).start()
    try:
        wait_until(lambda: service.snapshot is not None, what="the model to load")
        assert service.adult_rule.state.startswith("waiting: catalogue not written yet")
        write_catalogue(path, ADULT)
        wait_until(lambda: service.adult_rule.enforced, timeout=10, what="the filter enforced")
    finally:
        loader.stop()
    assert not set(answer(service, MINOR)) & ADULT
    service.answers.close()


def gauge(metrics: str, name: str) -> float:
    return next(
        sample.value
        for family in text_string_to_metric_families(metrics)
        for sample in family.samples
        if sample.name == name
    )


def test_movies_the_catalogue_does_not_know_yet_are_held_back_until_a_new_model_reads_it(
    tmp_path: Path,
) -> None:
    models = hand_made_models(tmp_path / "models", planted_data())
    path = write_catalogue(tmp_path / "catalog.sqlite", frozenset(), known=10)
    service = RecommendationService(models.registry.root, sample=0.0)
    loader = ModelLoader(service, catalogue=path, catalogue_every=3600)
    loader.read_catalogue()
    assert loader.check()
    known = {f"movie+{i}+{1990 + i}" for i in range(10)}
    got = answer(service, MINOR)  # 10 movies known and cleared, so 10 ids (seen ones last)
    assert len(got) == 10 and set(got) == known
    assert answer(service, GROWN) == unfiltered(service, GROWN)  # adults: everything
    # The catalogue learns every movie; the next read is an hour away, but a new model
    # brings its own read, so its movies are judged on what the catalogue says now.
    path.unlink()
    write_catalogue(path, ADULT)
    assert not set(answer(service, MINOR)) - known  # not read yet: still held back
    models.registry.promote(models.add(PopularityRecommender()), "a new model, for a test")
    assert loader.check()
    got = answer(service, MINOR)
    assert len(got) == len(set(got)) == 20 and not set(got) & HELD and set(got) - known
    service.answers.close()


# ---- the rule over any list: hypothesis -------------------------------------------------
N_ITEMS = 30
_PROPERTY = tempfile.TemporaryDirectory(prefix="safety-property-")


@pytest.fixture(scope="module")
def property_snapshot(models: HandMadeModels) -> Snapshot:
    return models.snapshot()


@settings(max_examples=300, deadline=None)
@given(
    ranked=st.lists(st.integers(-1, N_ITEMS - 1), max_size=DEPTH),
    popular=st.lists(st.integers(-1, N_ITEMS - 1), max_size=DEPTH),
    adult=st.sets(st.integers(0, N_ITEMS - 1)),
    unsaid=st.sets(st.integers(0, N_ITEMS - 1)),  # the catalogue has no flag (or no movie)
    age=st.integers(-1, 90) | st.none(),
    allow_unknown_age=st.booleans(),
    user=st.sampled_from([MINOR, GROWN]) | st.integers(2_000_000, MAX_USER_ID),
)
def test_no_restricted_user_ever_gets_an_adult_movie_and_always_gets_what_is_left(
    property_snapshot: Snapshot,
    ranked: list[int],
    popular: list[int],
    adult: set[int],
    unsaid: set[int],
    age: int | None,
    allow_unknown_age: bool,
    user: int,
) -> None:
    unsaid = unsaid - adult
    held = adult | unsaid
    base = property_snapshot
    items = base.items[:N_ITEMS]
    snapshot = Snapshot(
        version="any",
        model=base.model,  # for the history of a user whose list is topped up
        items=items,
        user_ids=np.empty(0, np.int64),
        lists=np.empty((0, DEPTH), np.int32),
        popular=np.array(popular, np.int32),
        segments=None,
        data_end_ns=0,
        built_seconds=0.0,
    )
    service = RecommendationService(_PROPERTY.name, sample=0.0)
    service.adult_for_unknown_age = allow_unknown_age
    service.install(snapshot)
    names = [m.decode() for m in items]
    service.install_adult_rule(
        AdultRule(
            frozenset(names[i] for i in adult),
            frozenset(m for i, m in enumerate(names) if i not in held),
        )
    )
    if age is not None:  # None: not catalogued; -1: catalogued without an age
        service.demographics = Demographics(
            np.array([user], np.int64), np.array([age], np.int16),
            np.array([0], np.int8), np.array([0], np.int8),
        )  # fmt: skip
    service.fresh[user] = (snapshot.version, np.array(ranked, np.int32))
    body, source = service.answer(snapshot, user)
    got = [items.index(m) for m in body.split(b",")] if body else []
    known_age = -1 if age is None else age
    if 0 <= known_age < 18 or (known_age < 0 and not allow_unknown_age):
        assert not set(got) & held and len(got) == len(set(got))
        assert len(got) == min(20, N_ITEMS - len(held))
        assert got == reference(ranked, popular, held, seen_by(snapshot, user))
        assert service.metrics.restricted_answers.total() == 1
    else:
        assert body == snapshot.body(np.array(ranked, np.int32))
        assert service.metrics.restricted_answers.total() == 0
    assert source == "fresh"


def seen_by(snapshot: Snapshot, user: int) -> set[int]:
    return {i for i in snapshot.history(user).tolist() if i < N_ITEMS}


def reference(ranked: list[int], popular: list[int], held: set[int], seen: set[int]) -> list[int]:
    """The rule, slowly: the ranked list without held movies (adult, or not known not to
    be) or repeats; then what is popular, then every other movie, unseen ones before seen
    ones; the first 20."""
    allowed = [i for i in range(N_ITEMS) if i not in held]
    unique = list(dict.fromkeys(i for i in ranked if i in allowed))
    if len(unique) >= 20:
        return unique[:20]
    order = list(dict.fromkeys([*(i for i in popular if i in allowed), *allowed]))
    unseen = [i for i in order if i not in seen and i not in unique]
    again = [i for i in order if i in seen and i not in unique]
    return [*unique, *unseen, *again][:20]


# ---- the simulated site -----------------------------------------------------------------
def test_the_simulated_sites_minors_never_get_an_adult_movie_and_the_audit_agrees(
    serving: Running, simulated_store: SimulatedStore
) -> None:
    catalogue = EventStore(simulated_store.path).catalog_path
    flags = MovieAdultFlags.load(catalogue)
    adult = flags.adult_ids()
    world = simulated_store.world
    said = set(flags.ids[flags.adult >= 0].tolist())  # movies in the log the API vouched for
    assert adult == {m for i, m in enumerate(world.movie_ids) if world.movie_adult[i]} & said
    assert len(adult) >= 5  # the ingested API's "True", 2% of 500 movies
    users = CatalogueUsers.load(catalogue)
    minors = users.ids[(users.age >= 0) & (users.age < 18)].tolist()
    assert len(minors) > 30
    strangers = list(range(3_000_000, 3_000_050))  # unknown age: the popular list
    kept = 0
    for user in [*minors, *strangers]:
        before = unfiltered(serving.service, user)
        kept += bool(set(before) & adult)
        got = serving.get(f"/recommend/{user}")[1].decode().split(",")
        assert not set(got) & adult and len(set(got)) == 20, user
    assert kept > 0  # adult movies were there to keep out (else this test could not fail)
    grown = users.ids[users.age >= 18][:200].tolist()
    shown = sum(bool(set(serving.get(f"/recommend/{u}")[1].decode().split(",")) & adult)
                for u in grown)  # fmt: skip
    assert shown > 0  # adults are not filtered
    serving.service.answers.close()  # flushes the answer log
    answers = serving.service.answers.directory
    assert answers is not None
    report = safety_section(answers, catalogue)
    assert report["catalogue"] == report["answers"] == "ok"
    assert report["violations"] == 0 and report["examples"] == []
    assert report["answers_to_minors"] >= len(minors)
    assert report["answers_to_unknown_age"] >= len(strangers)
    # The same log audited as if unknown ages were allowed: still nothing for minors.
    assert safety_section(answers, catalogue, allow_unknown_age=True)["violations"] == 0
