"""Every model by name: build one from hyperparameters, or load one from its directory.

A saved model's directory starts with model.json ({"name": ..., "params": {...}}), which
every model's save() writes first; load_model() reads it to pick the class, so the code
that serves or evaluates models never needs to know which kind it holds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from movierec.models.als import ALSRecommender
from movierec.models.base import Recommender, TrainingData, read_model_file
from movierec.models.bpr import BPRRecommender
from movierec.models.coldstart import ColdStartRecommender
from movierec.models.ease import EASERecommender
from movierec.models.itemknn import ItemKNNRecommender
from movierec.models.popularity import PopularityRecommender
from movierec.models.random_lists import RandomListsRecommender
from movierec.models.rp3beta import RP3betaRecommender
from movierec.models.slow import SlowRecommender

MODELS: dict[str, type[Recommender]] = {
    model.name: model
    for model in (
        PopularityRecommender,
        ALSRecommender,
        ItemKNNRecommender,
        ColdStartRecommender,
        RP3betaRecommender,
        EASERecommender,
        BPRRecommender,
        RandomListsRecommender,  # a floor for experiments, never a default candidate
        SlowRecommender,  # answers late on purpose (canary tests), never a default candidate
    )
}

# Kinds with a random start: `fit` gives them the run's seed unless params set their own.
SEEDED = frozenset({"als", "bpr"})


def model_class(name: str) -> type[Recommender]:
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(f"unknown model {name!r}; known: {', '.join(sorted(MODELS))}") from None


def create(name: str, **params: Any) -> Recommender:
    """An unfitted model; unknown or invalid hyperparameters raise (TypeError, ValueError)."""
    return model_class(name)(**params)


def fit(name: str, params: dict[str, Any], data: TrainingData, seed: int) -> Recommender:
    """A model of kind name fitted on data; seed fixes the random start of those that have one."""
    if name in SEEDED:
        params = {"random_state": seed, **params}
    return create(name, **params).fit(data)


def load_model(directory: Path | str) -> Recommender:
    """The fitted model saved in directory, whichever kind it is."""
    directory = Path(directory)
    return model_class(read_model_file(directory)["name"]).load(directory)


def save_model(model: Recommender, directory: Path | str) -> Path:
    """Save into directory, creating it; it must not already hold anything."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if any(directory.iterdir()):
        raise FileExistsError(f"{directory} is not empty")
    model.save(directory)
    return directory
