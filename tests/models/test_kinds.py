"""The registry of models: names, creation, and loading whatever a directory holds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from movierec.models.als import ALSRecommender
from movierec.models.kinds import MODELS, create, fit, load_model, save_model
from movierec.models.popularity import PopularityRecommender
from tests.models.contract import planted_data


def test_every_model_is_registered_under_its_name() -> None:
    names = {
        "popularity", "als", "itemknn", "coldstart", "rp3beta", "ease", "bpr", "random", "slow"
    }  # fmt: skip
    assert set(MODELS) == names
    for name, model_type in MODELS.items():
        assert model_type.name == name
        assert isinstance(create(name), model_type)


def test_create_passes_and_checks_hyperparameters() -> None:
    model = create("als", factors=8, iterations=3)
    assert isinstance(model, ALSRecommender)
    assert (model.params.factors, model.params.iterations) == (8, 3)
    with pytest.raises(ValueError, match="unknown model"):
        create("svd")
    with pytest.raises(ValueError):
        create("als", factors=-1)
    with pytest.raises(TypeError):
        create("popularity", factors=8)


def test_load_model_picks_the_class_from_model_json(tmp_path: Path) -> None:
    data = planted_data()
    model = PopularityRecommender(half_life_days=3.0).fit(data)
    directory = save_model(model, tmp_path / "nested" / "popularity")
    assert json.loads((directory / "model.json").read_text()) == {
        "name": "popularity",
        "params": {"half_life_days": 3.0},
    }
    loaded = load_model(str(directory))
    assert isinstance(loaded, PopularityRecommender)
    assert (loaded.recommend(data.user_ids, 5) == model.recommend(data.user_ids, 5)).all()
    with pytest.raises(ValueError, match="popularity"):
        ALSRecommender.load(directory)


def test_save_model_refuses_a_directory_in_use(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        save_model(PopularityRecommender().fit(planted_data()), tmp_path)


@pytest.mark.parametrize(
    "document", [{"name": "nope", "params": {}}, {"params": {}}, ["als"], {"name": "als"}]
)
def test_load_model_refuses_unknown_descriptions(tmp_path: Path, document: object) -> None:
    (tmp_path / "model.json").write_text(json.dumps(document))
    with pytest.raises(ValueError):
        load_model(tmp_path)


def test_params_from_model_json_are_validated(tmp_path: Path) -> None:
    model = PopularityRecommender().fit(planted_data())
    directory = save_model(model, tmp_path / "m")
    document = json.loads((directory / "model.json").read_text())
    document["params"]["half_life_days"] = -1
    (directory / "model.json").write_text(json.dumps(document))
    with pytest.raises(ValueError):
        load_model(directory)
    assert np.load(directory / "popularity_scores.npy").shape == (40,)


def test_numpy_hyperparameters_are_saved_as_plain_numbers(tmp_path: Path) -> None:
    model = create("itemknn", neighbours=np.int64(4), shrinkage=np.float32(1.5))
    directory = save_model(model.fit(planted_data()), tmp_path / "knn")
    params = json.loads((directory / "model.json").read_text())["params"]
    assert (params["neighbours"], params["shrinkage"]) == (4, 1.5)
    assert load_model(directory).params == model.params


@pytest.mark.parametrize("name", ["als", "bpr"])
def test_fit_seeds_the_kinds_with_a_random_start(name: str) -> None:
    data = planted_data()
    small = {"factors": 2, "iterations": 2}
    assert fit(name, small, data, seed=5).params.random_state == 5  # type: ignore[attr-defined]
    own = fit(name, {**small, "random_state": 9}, data, seed=5)
    assert own.params.random_state == 9  # type: ignore[attr-defined]
