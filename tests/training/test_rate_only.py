"""Training on what a rate-only stream has: validation always finds users when anything
can be compared, a personalised model wins where tastes differ, and a training that can
compare nothing leaves production as it is and says why."""

from __future__ import annotations

from pathlib import Path

import pytest

from movierec.registry.versions import Registry
from movierec.training.pipeline import TrainConfig, train
from tests.support.commands import movierec
from tests.support.ratings import arrivals_store, one_rating_store, steady_store


def run(store: Path, models: Path) -> dict:
    return train(
        TrainConfig(
            store=str(store), models_dir=str(models), models=("itemknn",), budget_seconds=0.0
        )
    )


@pytest.mark.parametrize(
    ("make", "kind"),
    [(steady_store, "time"), (arrivals_store, "per_user")],
    ids=["weekly", "arrivals"],
)
def test_a_rate_only_store_validates_with_users_and_promotes_a_personalised_model(
    tmp_path: Path, make, kind: str
) -> None:
    make(str(tmp_path / "store"))
    summary = run(tmp_path / "store", tmp_path / "models")
    split = summary["split"]
    assert split["kind"] == kind
    assert split["validation"]["test_users"] >= 10 and split["test"]["test_users"] >= 10
    assert summary["promoted"] and summary["winner"] == "itemknn"
    production = Registry(tmp_path / "models").production()
    assert production == summary["versions"]["itemknn"] == summary["production"]
    offline = summary["offline"]
    assert offline["itemknn"]["ndcg@20"] > 1.5 * offline["popularity"]["ndcg@20"]
    provenance = Registry(tmp_path / "models").provenance(production)
    assert provenance["selection"]["split"]["kind"] == kind


def test_with_no_comparison_possible_production_stays_and_the_reason_is_recorded(
    tmp_path: Path,
) -> None:
    steady_store(str(tmp_path / "good"))
    models = tmp_path / "models"
    before = run(tmp_path / "good", models)["production"]
    one_rating_store(str(tmp_path / "thin"))
    summary = run(tmp_path / "thin", models)
    assert not summary["promoted"] and summary["winner"] is None
    assert "no comparison possible" in summary["reason"]
    registry = Registry(models)
    assert registry.production() == summary["production"] == before
    last = registry.read()["history"][-1]
    assert last["from"] == last["to"] == before and last["reason"] == summary["reason"]
    # The command says so, and exits non-zero.
    done = movierec(
        "train", "--store", str(tmp_path / "thin"), "--models", str(models), "--budget", "0"
    )
    assert done.returncode == 3, done.stderr
    assert "nothing promoted" in done.stderr
    assert Registry(models).production() == before
