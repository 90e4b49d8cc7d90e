"""Which data each stage of training learns from and is judged on.

    validation  learn, then score candidates on held-out relevance (picks hyperparameters
                and the production kind)
    test        learn on more, report each kind's best on data validation never saw

A time split first: T cuts the stored time range at `train_share`, V cuts [start, T)
likewise. Users on both sides are test users the training data knows. When either cut
has fewer than `min_split_users` of them, or they are less than `min_known_share` of its
test users (a small site, bursts of activity, a replayed history), each user's latest
interactions are held out instead, and the plan says so, with its user counts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pyarrow as pa

from movierec.catalog.reader import Catalogue
from movierec.evaluation.split import (
    Holdout,
    SplitConfig,
    cut_at_share,
    holdout,
    latest_per_user,
    liked,
    positive_rating,
    relevant_pairs,
)
from movierec.features.feedback import FeedbackConfig, build
from movierec.features.interactions import interactions, time_range, training_data
from movierec.models.base import TrainingData
from movierec.store.events import EventStore
from movierec.times import iso


@dataclass
class Fold:
    """Training data and the held-out relevance it is judged on."""

    train: TrainingData
    test: Holdout

    @property
    def known_test_users(self) -> int:
        return int(np.isin(self.test.user_ids, self.train.user_ids).sum())

    def describe(self) -> dict[str, int]:
        return {
            "train_users": self.train.n_users,
            "known_test_users": self.known_test_users,
            "train_interactions": int(self.train.matrix.nnz),
            "test_users": self.test.n_users,
            "test_pairs": int(self.test.relevant.nnz),
            "unknown_movies_in_test": self.test.unknown_items,
        }


@dataclass
class Plan:
    kind: Literal["time", "per_user"]
    validation: Fold
    test: Fold
    first_ns: int
    last_ns: int
    cuts: dict[str, int] = field(default_factory=dict)  # time split: validation_cut, test_cut
    why: str = ""

    @property
    def comparable(self) -> bool:
        """Whether candidates can be told apart: validation has users to score."""
        return self.validation.test.n_users > 0

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "why": self.why,
            "start": iso(self.first_ns),
            "end": iso(self.last_ns),
            **{name: iso(at) for name, at in self.cuts.items()},
            "validation": self.validation.describe(),
            "test": self.test.describe(),
            # Kept for readers of the time split's summary.
            "validation_users": self.validation.test.n_users,
            "test_users": self.test.test.n_users,
        }


def plan(
    store: EventStore,
    feedback: FeedbackConfig,
    split: SplitConfig,
    train_share: float = 0.8,
) -> Plan:
    span = time_range(store)
    if span is None:
        raise ValueError(f"the store {store.root} holds no watch or rate events yet")
    first, last = span
    positive = positive_rating(split, feedback.rating_scale)
    test_cut = cut_at_share(first, last, train_share)
    validation_cut = cut_at_share(first, test_cut, train_share)
    folds = []
    for cut, end in ((validation_cut, test_cut), (test_cut, None)):
        train = training_data(store, cut, feedback)
        folds.append(Fold(train, holdout(store, train, cut, end, positive)))
    # Users on both sides: test users the training data knows. A newcomer tests only the
    # fallback list, so a cut that leaves mostly newcomers scores the fallbacks, not the
    # models (MovieLens replayed: 86 of 185 validation users known, and selection picked
    # a kind half as good as the best on the users it serves).
    fewest = min(f.known_test_users for f in folds)
    share = min(f.known_test_users / max(f.test.n_users, 1) for f in folds)
    cuts = {"validation_cut": validation_cut, "test_cut": test_cut}
    if fewest >= split.min_split_users and share >= split.min_known_share:
        why = (
            f"a time cut leaves at least {fewest} users on both sides "
            f"({share:.0%} or more of the test users known)"
        )
        return Plan("time", folds[0], folds[1], first, last, cuts, why)
    why = (
        f"a time cut leaves {fewest} users on both sides, {share:.0%} of its test users "
        f"(the bar: {split.min_split_users} users and {split.min_known_share:.0%}): "
        f"each user's latest {split.holdout_share:.0%} of interactions held out instead"
    )
    catalogue = Catalogue.load(store.catalog_path)
    everything = interactions(store, last + 1)
    test_train, test = per_user_fold(everything, split.holdout_share)
    validation_train, validation = per_user_fold(test_train, split.holdout_share)
    folds = []
    for pairs, held in ((validation_train, validation), (test_train, test)):
        data = build(pairs, catalogue, last + 1, feedback)
        folds.append(Fold(data, _relevance(held, data, positive)))
    return Plan("per_user", folds[0], folds[1], first, last, {}, why)


def per_user_fold(pairs: pa.Table, share: float) -> tuple[pa.Table, pa.Table]:
    """(pairs to learn from, each user's latest pairs held out)."""
    held = latest_per_user(pairs, share)
    return pairs.filter(pa.array(~held)), pairs.filter(pa.array(held))


def _relevance(held: pa.Table, train: TrainingData, positive: float) -> Holdout:
    minutes = held.column("minutes").fill_null(0).to_numpy().astype(np.float64)
    rating = held.column("rating").fill_null(0).to_numpy().astype(np.float64)
    keep = liked(minutes, rating, positive)
    users = held.column("user_id").to_numpy().astype(np.int64)[keep]
    return relevant_pairs(users, held.column("movie_id").filter(pa.array(keep)), train)
