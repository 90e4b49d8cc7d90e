"""Input drift against the training window, on a store whose every indicator is known:
the day after the window repeats it exactly (nothing drifts), the day after that changes
everything (every indicator at its maximum)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from movierec.online.drift import (
    WATCH_BINS,
    DriftLimits,
    drift_report,
    js_divergence,
    watch_histogram,
)
from movierec.store.events import EventStore
from tests.online.handmade import DAY_NS, T0, commit, register, session, write_rate, write_watch

WINDOW = {"from": "2025-01-01T00:00:00+00:00", "to": "2025-01-01T23:59:59+00:00"}
LIMITS = DriftLimits(min_users=5, min_sessions=5, min_ratings=5)


def reference_js(p: list[float], q: list[float]) -> float:
    """Jensen–Shannon divergence the slow, obvious way: the definition, term by term."""
    p = [x / sum(p) for x in p]
    q = [x / sum(q) for x in q]
    total = 0.0
    for a, b in zip(p, q, strict=True):
        m = (a + b) / 2
        if a > 0:
            total += 0.5 * a * math.log2(a / m)
        if b > 0:
            total += 0.5 * b * math.log2(b / m)
    return total


def same_day(day: int, users: range, minutes: int = 10, stars: int = 4) -> tuple[list, list]:
    """Users 1-10 watch a+2000, 11-20 b+2000 (or whoever `users` names), each one session
    of `minutes` minutes an hour apart, and rate it `stars`."""
    watches, rates = [], []
    for i, user in enumerate(users):
        start = T0 + day * DAY_NS + i * 3_600 * 10**9 // 4
        movie = "a+2000" if user <= 10 else "b+2000"
        watches += session(user, movie, start, minutes)
        rates.append((start + minutes * 60 * 10**9, user, movie, stars))
    return watches, rates


def build(tmp_path: Path, data: dict | None = WINDOW, day4: bool = False) -> tuple[Path, Path]:
    store = EventStore(tmp_path / "store")
    w0, r0 = same_day(0, range(1, 21))
    w1, r1 = same_day(1, range(1, 21))
    # Day 3: users 11-30 (half of them new), all on a movie the window never saw, for 30
    # minutes (another bin), rating it 1.
    w2, r2 = [], []
    for i, user in enumerate(range(11, 31)):
        start = T0 + 2 * DAY_NS + i * 3_600 * 10**9 // 4
        w2 += session(user, "c+2000", start, 30)
        r2.append((start + 31 * 60 * 10**9, user, "c+2000", 1))
    # A minute on day 4 makes day 3 complete (the log has moved past it).
    w3 = session(1, "a+2000", T0 + 3 * DAY_NS, 1) if day4 else []
    write_watch(store, 1, w0 + w1 + w2 + w3)
    write_rate(store, 1, r0 + r1 + r2)
    commit(store, 1)
    register(tmp_path / "models", "v1", data)
    return store.root, tmp_path / "models"


def test_a_day_like_the_window_does_not_drift_and_a_different_one_drifts_on_everything(
    tmp_path: Path,
) -> None:
    report = drift_report(*build(tmp_path), limits=LIMITS)
    assert report["window"] == {
        "version": "v1",
        "from": "2025-01-01T00:00:00+00:00",
        "to": "2025-01-02T00:00:00+00:00",
        "source": "provenance",
    }
    same, changed = report["days"]
    assert (same["day"], changed["day"]) == ("2025-01-02", "2025-01-03")
    assert (same["complete"], changed["complete"]) == (True, False)
    assert same["users"] == changed["users"] == 20
    assert same["sessions"] == changed["sessions"] == 20
    for name, indicator in same["indicators"].items():
        assert indicator["value"] == 0, name
        assert not indicator["drifted"]
    got = {n: i["value"] for n, i in changed["indicators"].items()}
    # 10 of the 20 users are new; their events: 10 x (30 watch + 1 rate) of 20 x 31.
    assert got == {
        "new_user_share": 0.5,
        "new_user_event_share": 0.5,
        "movie_mix_js": 1.0,  # disjoint movie mixes
        "unseen_movie_share": 1.0,
        "rating_tvd": 1.0,  # every 4 became a 1
        "watch_length_js": 1.0,  # 10 minutes (bin 10-19) against 30 (bin 20-39)
    }
    assert all(i["drifted"] and i["judged"] for i in changed["indicators"].values())
    assert changed["indicators"]["rating_tvd"]["threshold"] == LIMITS.rating_tvd
    # The log's last day is still being written: the latest verdict is the day before.
    assert report["latest_day"] == "2025-01-02" and report["drifted"] == []


def test_once_the_log_moves_on_the_changed_day_is_the_latest(tmp_path: Path) -> None:
    report = drift_report(*build(tmp_path, day4=True), limits=LIMITS)
    assert json.loads(json.dumps(report)) == report  # JSON-ready: plain types only
    assert [d["complete"] for d in report["days"]] == [True, True, False]
    assert report["latest_day"] == "2025-01-03"
    assert report["latest"] == report["days"][1]["indicators"]
    assert report["drifted"] == sorted(report["latest"])  # every indicator
    quiet = report["days"][2]  # one user, one minute: shown, not judged
    assert not any(i["judged"] or i["drifted"] for i in quiet["indicators"].values())


def test_a_quiet_day_is_not_judged(tmp_path: Path) -> None:
    limits = DriftLimits(min_users=21, min_sessions=21, min_ratings=20)
    report = drift_report(*build(tmp_path), limits=limits)
    changed = report["days"][-1]["indicators"]
    assert changed["new_user_share"] == {
        "value": 0.5,
        "threshold": 0.25,
        "judged": False,
        "drifted": False,
    }
    assert not changed["movie_mix_js"]["judged"] and not changed["movie_mix_js"]["drifted"]
    assert changed["rating_tvd"]["drifted"]  # 20 ratings are enough for 20


def test_without_a_window_in_provenance_the_creation_time_ends_it(tmp_path: Path) -> None:
    store, models = build(tmp_path, data=None)
    # Created at the end of day 1: the same split as the provenance above.
    (models / "registry.json").write_text(
        (models / "registry.json").read_text().replace("20250101T000000Z", "20250102T000000Z")
    )
    report = drift_report(store, models, limits=LIMITS)
    assert report["window"]["source"] == "created"
    assert report["window"]["from"] is None
    assert [d["day"] for d in report["days"]] == ["2025-01-02", "2025-01-03"]
    assert report["days"][1]["indicators"]["unseen_movie_share"]["value"] == 1.0


def test_no_production_version_means_nothing_to_compare(tmp_path: Path) -> None:
    report = drift_report(tmp_path / "store", tmp_path / "models")
    assert report["window"] is None and report["days"] == [] and report["latest"] == {}


def test_watch_bins_are_left_closed_and_the_last_is_open_ended() -> None:
    hist = watch_histogram(np.array([1, 1, 2, 4, 5, 179, 180, 900, 0]))
    assert len(hist) == len(WATCH_BINS)
    assert hist.tolist() == [2, 2, 1, 0, 0, 0, 0, 0, 1, 2]  # the 0 falls in no bin


def test_js_divergence_known_values() -> None:
    assert js_divergence(np.array([1, 0]), np.array([0, 1])) == 1.0
    assert js_divergence(np.array([3, 1]), np.array([6, 2])) == 0.0
    assert js_divergence(np.array([0, 0]), np.array([1, 1])) == 0.0  # nothing to compare


@given(
    st.lists(st.integers(0, 50), min_size=1, max_size=12).flatmap(
        lambda p: st.tuples(
            st.just(p), st.lists(st.integers(0, 50), min_size=len(p), max_size=len(p))
        )
    )
)
def test_js_divergence_matches_the_definition(pair: tuple[list[int], list[int]]) -> None:
    p, q = pair
    if sum(p) == 0 or sum(q) == 0:
        return
    fast = js_divergence(np.array(p), np.array(q))
    assert math.isclose(fast, reference_js(p, q), abs_tol=1e-9)
    assert 0 <= fast <= 1
    assert math.isclose(fast, js_divergence(np.array(q), np.array(p)), abs_tol=1e-12)
