"""The feedback loop's signature on a store with known concentration, and the Gini
coefficient against its definition."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from movierec.online.loop import (
    conversion_by_day,
    gini,
    loop_report,
    loop_report_by_arm,
    top_share,
)
from movierec.store.events import EventStore
from tests.online.handmade import DAY_NS, T0, commit, session, write_recommendations, write_watch


def reference_gini(counts: list[int]) -> float:
    """Gini the slow, obvious way: the mean absolute difference of every pair over twice
    the mean, on the sorted list."""
    values = sorted(counts)
    n, total = len(values), sum(values)
    if n == 0 or total == 0:
        return 0.0
    differences = sum(abs(a - b) for a in values for b in values)
    return differences / (2 * n * n * (total / n))


def test_the_day_the_lists_narrow_shows_in_gini_top_share_and_coverage(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "store")
    day2 = T0 + DAY_NS
    write_recommendations(
        store,
        1,
        [
            (T0, 1, 200, ["a+2000", "b+2000"]),
            (T0 + 10, 2, 200, ["a+2000", "b+2000"]),
            (T0 + 20, 3, 0, []),  # a failed call recommended nothing
            *[(day2 + i, i, 200, ["a+2000"]) for i in range(4)],
        ],
    )
    watches = [
        *session(1, "a+2000", T0, 3),
        *session(2, "b+2000", T0, 3),
        *session(3, "c+2000", T0, 3),
        *session(4, "d+2000", T0, 3),
        *[row for user in (1, 2, 3) for row in session(user, "a+2000", day2 + DAY_NS // 2, 2)],
    ]
    write_watch(store, 1, watches)
    commit(store, 1)
    report = loop_report(store.root)
    assert json.loads(json.dumps(report)) == report  # JSON-ready: plain types only
    assert report["catalogue"] == 4
    first, second = report["days"]
    assert first["day"] == "2025-01-01" and second["day"] == "2025-01-02"
    # Day 1: a and b twice each of four movies; every movie watched once.
    assert first["recommended"] == {
        "movies": 2,
        "total": 4,
        "gini": 0.5,
        "top1_share": 0.5,
        "lists": 2,
        "coverage": 0.5,
    }
    assert first["watched"] == {"movies": 4, "total": 4, "gini": 0.0, "top1_share": 0.25}
    # Day 2: one movie only, in the lists and on the screens: (n - 1) / n.
    assert second["recommended"]["gini"] == 0.75 and second["recommended"]["coverage"] == 0.25
    assert second["recommended"]["top1_share"] == 1.0
    assert second["watched"]["gini"] == 0.75
    assert report["latest"] == second
    assert report["trend"] == {"recommended_gini": 0.25, "watched_gini": 0.75, "coverage": -0.25}


def test_an_empty_store_has_no_days(tmp_path: Path) -> None:
    report = loop_report(tmp_path / "store")
    assert report["days"] == [] and report["latest"] is None and report["catalogue"] == 0


def test_top_share_takes_at_least_one_movie_and_one_percent_of_many() -> None:
    assert top_share(np.array([5, 3, 2])) == 0.5
    assert top_share(np.array([1] * 200)) == 0.01  # 2 of 200 movies, 2 of 200 counts
    assert top_share(np.array([0, 0])) == 0.0


counts = st.lists(st.integers(0, 1000), min_size=1, max_size=60)


@given(counts)
def test_gini_matches_the_mean_absolute_difference(values: list[int]) -> None:
    assert math.isclose(gini(np.array(values)), reference_gini(values), abs_tol=1e-9)


@given(st.integers(1, 500), st.integers(1, 10_000))
def test_gini_of_equal_counts_is_zero(n: int, count: int) -> None:
    assert math.isclose(gini(np.full(n, count)), 0.0, abs_tol=1e-9)


@given(st.integers(1, 300), st.integers(1, 10_000))
def test_gini_of_one_movie_only_approaches_one(n: int, count: int) -> None:
    values = np.zeros(n, dtype=np.int64)
    values[n // 2] = count
    assert math.isclose(gini(values), (n - 1) / n, abs_tol=1e-9)
    assert math.isclose(reference_gini(values.tolist()), (n - 1) / n, abs_tol=1e-9)


def test_gini_of_one_movie_in_a_large_catalogue_is_nearly_one() -> None:
    values = np.zeros(100_000, dtype=np.int64)
    values[7] = 3
    assert math.isclose(gini(values), 1 - 1e-5, abs_tol=1e-12)


@given(counts, st.randoms(use_true_random=False))
def test_gini_is_invariant_under_permutation(values: list[int], rng: random.Random) -> None:
    shuffled = list(values)
    rng.shuffle(shuffled)
    assert math.isclose(gini(np.array(values)), gini(np.array(shuffled)), abs_tol=1e-12)


# ---- per experiment arm -----------------------------------------------------------------
A, B, C, D, E = "a+2000", "b+2000", "c+2000", "d+2000", "e+2000"


def write_answers(directory: Path, records: list[tuple[int, str | None, str | None]]) -> Path:
    """Answer records (user, experiment, arm) as the service logs them."""
    directory.mkdir(parents=True, exist_ok=True)
    lines = [
        json.dumps(
            {
                "time": f"2027-01-15T00:00:{n:02d}.000000+00:00",
                "user": user,
                "version": "v1",
                "experiment": experiment,
                "arm": arm,
                "source": "model",
                "items": A,
            }
        )
        for n, (user, experiment, arm) in enumerate(records)
    ]
    (directory / "answers-2027011500.jsonl").write_text("\n".join(lines) + "\n")
    return directory


def two_arm_store(root: Path) -> EventStore:
    """Day 1: users 1, 2 are shown a and b and watch a; users 3, 4 are shown and watch c
    and d; user 5 is shown a and watches e; user 6 (no arm) is shown and watches b."""
    store = EventStore(root / "store")
    write_recommendations(
        store,
        1,
        [
            (T0, 1, 200, [A, B]),
            (T0 + 1, 2, 200, [A, B]),
            (T0 + 2, 3, 200, [C]),
            (T0 + 3, 4, 200, [D]),
            (T0 + 4, 5, 200, [A]),
            (T0 + 5, 6, 200, [B]),
            (T0 + 6, 3, 0, []),  # a failure shows nothing
        ],
    )
    watches = [*session(1, A, T0, 2), *session(2, A, T0, 2), *session(3, C, T0, 2)]
    watches += [*session(4, D, T0, 2), *session(5, E, T0, 2), *session(6, B, T0, 2)]
    write_watch(store, 1, watches)
    commit(store, 1)
    return store


ANSWERS = [
    (1, "e1", "a"), (2, "e1", "a"), (1, "e2", "a"), (3, "e1", "b"), (4, "e2", "b"),
    (5, "e1", "a"), (5, "e2", "b"),  # user 5 changed arms between experiments
    (6, None, None),  # answered outside any experiment
]  # fmt: skip


def test_each_arms_day_counts_its_own_users_only(tmp_path: Path) -> None:
    store = two_arm_store(tmp_path)
    answers = write_answers(tmp_path / "answers", ANSWERS)
    report = loop_report_by_arm(store.root, answers)
    assert json.loads(json.dumps(report)) == report
    assert report["catalogue"] == 5
    assert (report["users_in_arms"], report["users_in_several_arms"]) == (4, 1)
    assert "1 users were answered in more than one arm" in report["warnings"][0]
    a, b = report["arms"]["a"], report["arms"]["b"]
    assert (a["users"], b["users"]) == (2, 2)
    (day_a,) = a["days"]
    # Arm a: a and b twice each of five movies; a watched twice.
    assert day_a["recommended"] == {
        "movies": 2,
        "total": 4,
        "gini": round(reference_gini([2, 2, 0, 0, 0]), 6),
        "top1_share": 0.5,
        "lists": 2,
        "coverage": 0.4,
    }
    assert day_a["watched"] == {"movies": 1, "total": 2, "gini": 0.8, "top1_share": 1.0}
    (day_b,) = b["days"]  # its failed call is not a list
    assert day_b["recommended"]["lists"] == 2 and day_b["recommended"]["coverage"] == 0.4
    assert day_b["watched"]["gini"] == round(reference_gini([1, 1, 0, 0, 0]), 6)
    # Counting one experiment only, user 5 is in arm a: its list and its watch of e join.
    only = loop_report_by_arm(store.root, answers, experiments={"e1"})
    assert only["users_in_several_arms"] == 0 and only["warnings"] == []
    assert only["arms"]["a"]["users"] == 3
    assert only["arms"]["a"]["days"][0]["watched"]["movies"] == 2
    assert only["arms"]["b"]["users"] == 1  # user 4 was in b of e2 only


def test_one_arm_of_everyone_is_the_whole_loop(tmp_path: Path) -> None:
    store = two_arm_store(tmp_path)
    answers = write_answers(tmp_path / "answers", [(u, "e1", "all") for u in range(1, 7)])
    whole, by_arm = loop_report(store.root), loop_report_by_arm(store.root, answers)
    assert by_arm["arms"]["all"]["days"] == whole["days"]
    assert by_arm["arms"]["all"]["trend"] == whole["trend"]


def test_no_arm_in_the_answer_log_says_so(tmp_path: Path) -> None:
    store = two_arm_store(tmp_path)
    missing = loop_report_by_arm(store.root, tmp_path / "nowhere")
    assert missing["arms"] == {} and "no answer log" in missing["warnings"][0]
    answers = write_answers(tmp_path / "answers", [(1, None, None)])
    none = loop_report_by_arm(store.root, answers)
    assert none["arms"] == {} and "no answer record names an experiment arm" in none["warnings"][0]


def test_conversion_by_day_sums_an_arms_hours_over_its_experiments() -> None:
    def hour(at: str, arm: str | None, requests: int, judged: int, followed: int) -> dict:
        return {"hour": at, "arm": arm, "requests": requests, "judged": judged,
                "followed": followed}  # fmt: skip

    online = {
        "hours": [
            hour("2025-01-01T22:00:00+00:00", "a", 5, 4, 1),
            hour("2025-01-01T23:00:00+00:00", "a", 7, 6, 2),  # another experiment's a
            hour("2025-01-02T00:00:00+00:00", "a", 3, 0, 0),
            hour("2025-01-01T23:00:00+00:00", "b", 2, 2, 2),
            hour("2025-01-01T23:00:00+00:00", None, 9, 9, 9),  # outside any experiment
        ]
    }
    assert conversion_by_day(online) == {
        "a": [
            {"day": "2025-01-01", "requests": 12, "judged": 10, "followed": 3, "conversion": 0.3},
            {"day": "2025-01-02", "requests": 3, "judged": 0, "followed": 0, "conversion": None},
        ],
        "b": [{"day": "2025-01-01", "requests": 2, "judged": 2, "followed": 2, "conversion": 1.0}],
    }
