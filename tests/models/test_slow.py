"""The slow model: the contract, popularity's very lists, and a declared answer delay that
survives a save and load and reaches the serving snapshot (every other kind declares 0)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import numpy as np

from movierec.models.kinds import MODELS, load_model, save_model
from movierec.models.popularity import PopularityRecommender
from movierec.models.slow import SlowRecommender
from movierec.registry.versions import Registry
from movierec.serving.snapshot import build
from movierec.training.pipeline import DEFAULT_MODELS, TrainConfig
from tests.models.contract import RecommenderContract, planted_data
from tests.support.serving import provenance_of


class TestSlow(RecommenderContract):
    bad_params: ClassVar[tuple[dict[str, object], ...]] = (
        {"delay_ms": -1},
        {"delay_ms": 0.5},
        {"delay_ms": "800"},
        {"half_life_days": 0.0},
    )

    def make(self) -> SlowRecommender:
        return SlowRecommender(delay_ms=50)


def test_it_ranks_exactly_as_popularity() -> None:
    data = planted_data()
    users = np.concatenate([data.user_ids, np.array([-1, 10**9])])
    slow = SlowRecommender(half_life_days=3.0).fit(data).recommend(users, 25)
    popular = PopularityRecommender(half_life_days=3.0).fit(data).recommend(users, 25)
    assert (slow == popular).all()


def test_the_delay_is_declared_saved_and_loaded(tmp_path: Path) -> None:
    assert SlowRecommender().answer_delay == 0.8  # default: longer than the site's 600 ms
    model = SlowRecommender(delay_ms=1250).fit(planted_data())
    loaded = load_model(save_model(model, tmp_path / "model"))
    assert isinstance(loaded, SlowRecommender) and loaded.answer_delay == 1.25


def test_only_the_slow_kind_gives_a_snapshot_a_delay(tmp_path: Path) -> None:
    data = planted_data()
    registry = Registry(tmp_path)
    slow = registry.add(SlowRecommender(delay_ms=300).fit(data), provenance_of(data))
    popular = registry.add(PopularityRecommender().fit(data), provenance_of(data))
    assert build(registry, slow, None).answer_delay == 0.3
    assert build(registry, popular, None).answer_delay == 0.0
    others = [name for name, kind in MODELS.items() if hasattr(kind, "answer_delay")]
    assert others == ["slow"]


def test_training_tries_the_slow_kind_never_by_default() -> None:
    assert "slow" not in DEFAULT_MODELS
    assert "slow" not in TrainConfig(store="s", models_dir="m").models
