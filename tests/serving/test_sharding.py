"""A shard's snapshot holds its own users alone, and answers them exactly as the whole
service does: for every model kind, the shard's lists, histories, per-user arrays and
fresh lists equal the unsharded snapshot's rows; and a request for another shard's user
gets a 421 naming it, counted, never a fallback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from movierec.models.base import Recommender
from movierec.models.coldstart import ColdStartRecommender
from movierec.models.history import History
from movierec.models.kinds import MODELS, fit
from movierec.registry.versions import Registry
from movierec.serving.app import RecommendationService
from movierec.serving.freshness import Freshness
from movierec.serving.shard import Shard, shard_of
from movierec.serving.sharding import PER_USER_ARRAYS, keep_rows
from movierec.serving.snapshot import DEPTH, build
from tests.models.contract import planted_data
from tests.support.serving import provenance_of, request

COUNT = 3


def seen_of(history: History, row: int) -> list[int]:
    return history.indices[int(history.indptr[row]) : int(history.indptr[row + 1])].tolist()


def per_user(model: Recommender) -> dict[str, np.ndarray]:
    found = {n: getattr(model, n) for n in PER_USER_ARRAYS if hasattr(model, n)}
    return {n: np.asarray(v) for n, v in found.items() if v is not None}


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[Registry, dict[str, str], str]:
    """Every model kind fitted on the planted data, and a cold-start version."""
    data = planted_data()
    registry = Registry(tmp_path_factory.mktemp("models"))
    versions = {
        name: registry.add(fit(name, {}, data, seed=3), provenance_of(data)) for name in MODELS
    }
    coldstart = registry.add(
        ColdStartRecommender(min_segment_users=5).fit(data), provenance_of(data)
    )
    return registry, versions, coldstart


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_a_shard_holds_its_users_rows_of_the_whole(
    registry: tuple[Registry, dict[str, str], str], kind: str
) -> None:
    reg, versions, coldstart = registry
    whole = build(reg, versions[kind], coldstart)
    assert whole.model_users == len(whole.user_ids) == 30
    held = []
    for index in range(COUNT):
        part = build(reg, versions[kind], coldstart, shard=Shard(index, COUNT))
        mine = np.array([shard_of(u, COUNT) == index for u in whole.user_ids.tolist()])
        assert part.user_ids.tolist() == whole.user_ids[mine].tolist()
        assert part.model.history.user_ids.tolist() == part.user_ids.tolist()
        assert part.model_users == 30 and str(part.shard) == f"{index}/{COUNT}"
        assert (part.lists == whole.lists[mine]).all()
        assert (part.popular == whole.popular).all()
        assert part.segments is not None and whole.segments is not None
        assert (part.segments == whole.segments).all()
        rows = np.flatnonzero(mine)
        for at, row in enumerate(rows.tolist()):
            assert seen_of(part.model.history, at) == seen_of(whole.model.history, row)
        for name, array in per_user(whole.model).items():
            assert (per_user(part.model)[name] == array[rows]).all(), name
        for user in whole.user_ids[mine].tolist():  # a fresh list from the shard's state
            items = np.unique(np.concatenate([part.history(user), [0, 25]]))
            ranked = part.model.recommend_history(user, items, None, DEPTH)
            assert (ranked == whole.model.recommend_history(user, items, None, DEPTH)).all()
        held += part.user_ids.tolist()
    assert sorted(held) == whole.user_ids.tolist()  # every user in exactly one shard


def test_a_per_user_array_the_cut_does_not_know_is_refused(
    registry: tuple[Registry, dict[str, str], str],
) -> None:
    reg, versions, coldstart = registry
    whole = build(reg, versions["itemknn"], coldstart)
    whole.model.user_weights = np.ones(30)  # type: ignore[attr-defined]  # unknown state
    with pytest.raises(ValueError, match="user_weights looks like one row per user"):
        keep_rows(whole.model, np.array([0, 1]))


def answers(service: RecommendationService, users: list[int]) -> list[tuple[int, bytes]]:
    out = []
    for user in users:
        response = service.handle(request(f"/recommend/{user}"))
        out.append((response.status, response.body))  # type: ignore[union-attr]
    return out


def test_each_shard_answers_its_users_as_the_whole_and_refuses_the_rest(
    tmp_path: Path, registry: tuple[Registry, dict[str, str], str]
) -> None:
    reg, versions, coldstart = registry
    reg.promote(versions["als"], "the sharding test")
    whole_service = RecommendationService(reg.root, None)
    whole_service.install(build(reg, versions["als"], coldstart))
    users = [*range(1000, 1100), 5, 777_777, 2_000_000_000]  # known (1000 + 3i), strangers
    expected = answers(whole_service, users)
    for index in range(COUNT):
        shard = Shard(index, COUNT)
        service = RecommendationService(reg.root, None, shard=shard)
        service.install(build(reg, versions["als"], coldstart, shard=shard))
        got = answers(service, users)
        misrouted = 0
        for user, want, have in zip(users, expected, got, strict=True):
            right = shard_of(user, COUNT)
            if right == index:
                assert have == want, user
            else:
                misrouted += 1
                assert have[0] == 421
                assert (
                    have[1] == f"user {user} is served by shard {right}/3, not {shard}\n".encode()
                )
        assert service.metrics.misrouted == misrouted > 0
        health = orjson.loads(service.handle(request("/healthz")).body)  # type: ignore[union-attr]
        assert health["shard"]["shard"] == str(shard)
        assert health["shard"]["users"] == len(service.snapshot.user_ids)  # type: ignore[union-attr]
        assert health["shard"]["model_users"] == 30
        assert health["shard"]["misrouted"] == misrouted
        metrics = service.metrics.render().decode()
        assert f"movierec_shard_misrouted_total {float(misrouted)}" in metrics
        assert f'movierec_shard_info{{shard="{shard}"}} 1.0' in metrics
    # An invalid id is refused alike by every shard, before any shard is chosen.
    bad = answers(RecommendationService(reg.root, None, shard=Shard(1, COUNT)), ["0x1"])  # type: ignore[list-item]
    assert bad == answers(whole_service, ["0x1"])  # type: ignore[list-item]
    assert bad[0][0] == 400


def test_a_shard_remembers_fresh_events_of_its_own_users_alone(
    registry: tuple[Registry, dict[str, str], str],
) -> None:
    reg, _, _ = registry
    users = list(range(1, 61))
    lines = [
        f"2025-01-01T00:{u // 60:02d}:{u % 60:02d},{u},GET /data/m/heat+1995/1.mpg".encode()
        for u in users
    ]
    arrivals = np.full(len(lines), 1_800_000_000 * 10**9, dtype=np.int64)
    remembered = []
    for index in range(COUNT):
        service = RecommendationService(reg.root, None, shard=Shard(index, COUNT))
        freshness = Freshness(service, "file:///nowhere")  # never started: fed by hand
        touched = freshness._remember(lines, arrivals)
        assert touched == {u for u in users if shard_of(u, COUNT) == index} != set()
        assert set(freshness.recent) == touched
        remembered += sorted(touched)
    assert sorted(remembered) == users
