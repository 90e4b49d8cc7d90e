"""The split plan: a time split where it compares models on the users they serve, each
user's latest interactions held out where it would not."""

from __future__ import annotations

from pathlib import Path

from movierec.evaluation.plan import plan
from movierec.evaluation.split import SplitConfig
from movierec.features.feedback import FeedbackConfig
from tests.support.ratings import GROUP_A, GROUP_B, arrivals_store, steady_store

USERS = len(GROUP_A) + len(GROUP_B)


def test_returning_users_on_both_sides_give_a_time_split(tmp_path: Path) -> None:
    folds = plan(steady_store(str(tmp_path)), FeedbackConfig(), SplitConfig())
    assert folds.kind == "time" and folds.comparable
    assert folds.validation.known_test_users == folds.validation.test.n_users == USERS


def test_a_cut_leaving_mostly_newcomers_holds_out_each_users_latest(tmp_path: Path) -> None:
    store = steady_store(str(tmp_path), newcomers=2 * USERS)
    folds = plan(store, FeedbackConfig(), SplitConfig())
    assert folds.kind == "per_user"
    assert "of its test users" in folds.why
    # Each of the returning users, and every newcomer with more than one rating.
    assert folds.test.test.n_users == USERS + 2 * USERS
    # The same store with the bar lowered keeps the time split.
    lenient = plan(store, FeedbackConfig(), SplitConfig(min_known_share=0.2))
    assert lenient.kind == "time"


def test_users_who_never_return_hold_out_their_own_latest(tmp_path: Path) -> None:
    folds = plan(arrivals_store(str(tmp_path)), FeedbackConfig(), SplitConfig())
    assert folds.kind == "per_user"
    assert folds.validation.test.n_users == folds.test.test.n_users == USERS
    # Two of each user's ten held out for the test, two of the remaining eight for
    # validation; nothing held out is in the training data.
    assert folds.test.test.relevant.nnz == 2 * USERS
    assert folds.validation.test.relevant.nnz == 2 * USERS
    assert folds.test.train.matrix.nnz == 8 * USERS
    assert folds.validation.train.matrix.nnz == 6 * USERS
