"""Offline evaluation of a model on a temporal split, overall and per subpopulation."""

from __future__ import annotations

from typing import Any

import numpy as np

from movierec.catalog.reader import Catalogue
from movierec.evaluation.metrics import breakdown, per_user_metrics, summarize
from movierec.evaluation.split import Holdout
from movierec.ids import find_in_sorted
from movierec.models.base import LIST_LENGTH, Recommender, TrainingData
from movierec.vocab import AGE_GROUPS, OCCUPATIONS, age_group


def recommend_for(
    model: Recommender,
    train: TrainingData,
    user_ids: np.ndarray,
    catalogue: Catalogue,
    k: int = LIST_LENGTH,
) -> np.ndarray:
    """Lists for any users; users the model never saw get its profile-based lists when it
    has them (the cold-start model), from the demographics the catalogue knows."""
    lists = model.recommend(user_ids, k)
    profiles = getattr(model, "recommend_for_profiles", None)
    new = train.user_rows(user_ids) < 0
    if profiles is not None and new.any():
        age, gender, occupation = demographics(catalogue, user_ids[new])
        lists[new] = profiles(age, gender, occupation, k)
    return lists


def demographics(catalogue: Catalogue, user_ids: np.ndarray) -> tuple[np.ndarray, ...]:
    """(age, gender, occupation) per user from the catalogue, -1 where unknown."""
    out = [np.full(len(user_ids), -1, dtype=np.int64) for _ in range(3)]
    at, hit = find_in_sorted(catalogue.user_ids, user_ids)
    for target, values in zip(
        out, (catalogue.user_age, catalogue.user_gender, catalogue.user_occupation), strict=True
    ):
        target[hit] = values[at[hit]]
    return tuple(out)


def subpopulations(
    train: TrainingData, test: Holdout, catalogue: Catalogue
) -> dict[str, np.ndarray]:
    """A label per test user for each way of slicing them."""
    rows = train.user_rows(test.user_ids)
    returning = rows >= 0
    counts = np.zeros(len(rows), dtype=np.int64)
    counts[returning] = np.diff(train.matrix.indptr)[rows[returning]]
    activity = np.full(len(rows), "new", dtype=object)
    if returning.any():
        edges = np.quantile(counts[returning], [0.25, 0.5, 0.75])
        quartile = np.searchsorted(edges, counts[returning], side="right")
        names = np.array(["Q1 (least active)", "Q2", "Q3", "Q4 (most active)"], dtype=object)
        activity[returning] = names[quartile]
    age, gender, occupation = demographics(catalogue, test.user_ids)
    age_names = np.array([name for _, _, name in AGE_GROUPS] + ["unknown"], dtype=object)
    age_label = age_names[[age_group(int(a)) if a >= 0 else -1 for a in age]]
    return {
        "user_type": np.where(returning, "returning", "new").astype(object),
        "activity": activity,
        "age_group": age_label,
        "gender": np.array(["M", "F", "unknown"], dtype=object)[gender],
        "occupation": np.array([*OCCUPATIONS, "unknown"], dtype=object)[occupation],
    }


def evaluate(
    model: Recommender,
    train: TrainingData,
    test: Holdout,
    catalogue: Catalogue,
    k: int = LIST_LENGTH,
) -> dict[str, Any]:
    """Accuracy (NDCG, recall, MAP, hit rate), coverage and popularity bias of a model's
    top-k lists for the test users, overall and per subpopulation."""
    if test.n_users == 0:
        raise ValueError("the test period has no watches of movies new to their users")
    lists = recommend_for(model, train, test.user_ids, catalogue, k)
    popularity = np.bincount(train.matrix.indices, minlength=train.n_items)
    result: dict[str, Any] = summarize(lists, test.relevant, train.n_items, popularity, k)
    per_user = per_user_metrics(lists, test.relevant, k)
    result["subpopulations"] = {
        name: {str(label): values for label, values in breakdown(per_user, labels).items()}
        for name, labels in subpopulations(train, test, catalogue).items()
    }
    return result
