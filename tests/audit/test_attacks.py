"""The shilling detector: known answers on a handmade store, the stated delay on a
simulated campaign, and its windows against a slow count done one arrival at a time."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from movierec.audit.attacks import ShillingDetectionSettings, shilling_report
from movierec.audit.bursts import by_movie_and_time, window_scores
from movierec.store.events import Checkpoint, EventStore
from tests.support.shilling import ShilledSite
from tests.support.store import MIN, T0, write_rate, write_watch

HOUR = 60 * MIN
DAY = 24 * HOUR
STATED_DELAY = 3 * HOUR  # movierec/audit/attacks.py: 50 accounts over 6 hours


def site_rows(campaign: bool) -> tuple[list[tuple[int, int, str, int]], list[tuple]]:
    """Watch and rate rows of a small site over six days: 20 accounts there from the
    start, 10 newcomers on days 3-4 one movie each, and (campaign) 12 accounts first seen
    on day 4 at 10:00, one every 10 minutes, each watching target+2001 for 3 minutes and
    rating it 5; 8 accounts first seen on day 1 (within the warm-up) all on early+2003
    within an hour, and a release on day 5 that 40 old accounts and 6 newcomers watch
    within two hours."""
    watch: list[tuple[int, int, str, int]] = []
    rate: list[tuple[int, int, str, int]] = []
    for account in range(1, 21):
        for day in range(6):
            at = T0 + day * DAY + account * 37 * MIN
            watch += [(at + m * MIN, account, f"m{(account + day) % 10}+2000", m) for m in range(2)]
    for i, account in enumerate(range(101, 111)):
        at = T0 + 3 * DAY + i * 5 * HOUR
        watch += [(at + m * MIN, account, f"m{i}+2000", m) for m in range(2)]
    for i, account in enumerate(range(301, 309)):
        watch.append((T0 + DAY + i * 7 * MIN, account, "early+2003", 0))
    for i, account in enumerate([*range(1, 21), *range(1, 21)]):
        at = T0 + 5 * DAY + i * 3 * MIN
        watch.append((at, account if i < 20 else account + 400, "release+2002", 0))
    for i, account in enumerate(range(501, 507)):
        watch.append((T0 + 5 * DAY + i * 17 * MIN, account, "release+2002", 0))
    for account in range(401, 421):  # the old accounts of the release, there from day 0
        watch.append((T0 + account * MIN, account, "m1+2000", 0))
    if campaign:
        for i, account in enumerate(range(201, 213)):
            at = T0 + 4 * DAY + 10 * HOUR + i * 10 * MIN
            watch += [(at + m * MIN, account, "target+2001", m) for m in range(3)]
            rate.append((at + 4 * MIN, account, "target+2001", 5))
    return watch, rate


def store_of(tmp_path: Path, campaign: bool) -> Path:
    store = EventStore(tmp_path / "store")
    store.recover()
    watch, rate = site_rows(campaign)
    write_watch(store, 1, watch)
    if rate:
        write_rate(store, 1, rate)
    store.commit(Checkpoint(seq=1))
    return store.root


def poisson_tail(count: int, mean: float) -> float:
    """P(X >= count) for X ~ Poisson(mean), the terms from count on summed the obvious
    way (far enough for the means here: the terms shrink faster than 1/2 past 2 x mean)."""
    last = count + 2 * int(mean) + 200
    return sum(
        math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1)) for k in range(count, last)
    )


def test_a_campaign_is_detected_at_the_arrival_that_crosses_with_its_accounts(
    tmp_path: Path,
) -> None:
    report = shilling_report(store_of(tmp_path, campaign=True))
    assert report["warnings"] == []
    assert [d["movie_id"] for d in report["detections"]] == ["target+2001"]
    found = report["detections"][0]
    # Nothing fresh ever arrived on the target before: the floor, 0.05 an hour x 3 hours.
    # Four arrivals score 4.6 (under 6); the fifth, at 10:40, scores 6.2.
    assert math.isclose(found["expected_at_detection"], 0.15)
    assert -math.log10(poisson_tail(4, 0.15)) < 6 < -math.log10(poisson_tail(5, 0.15))
    assert found["first_seen_ns"] == T0 + 4 * DAY + 10 * HOUR
    assert found["detected_at_ns"] == T0 + 4 * DAY + 10 * HOUR + 40 * MIN
    assert found["detected_at"] == "2025-01-05T10:40:00+00:00"
    assert found["accounts"] == 12 and found["account_ids"] == list(range(201, 213))
    assert found["events"] == 12 * 4  # three watch minutes and a rating each
    assert math.isclose(found["score"], -math.log10(poisson_tail(12, 0.15)), abs_tol=1e-3)
    (campaign,) = report["campaigns"]
    assert campaign["target"] == "target+2001" and campaign["accounts"] == 12


def test_the_same_site_without_the_campaign_has_no_detection(tmp_path: Path) -> None:
    """Newcomers one by one, a burst of accounts older than the store, and a release
    that new and old accounts flock to together: none of them is a campaign."""
    report = shilling_report(store_of(tmp_path, campaign=False))
    assert report["detections"] == [] and report["campaigns"] == []
    # The newcomers and the release's: the early burst's accounts came within the
    # store's first two days, and the release's old accounts were there from its start.
    assert report["judged"]["fresh_accounts"] == 10 + 6
    assert report["warnings"] == []
    # Alone against the floor, either burst would have been one: the warm-up keeps the
    # early one quiet, and the 40 old accounts on the release (the traffic baseline) the
    # release's six newcomers.
    assert -math.log10(poisson_tail(6, 0.15)) > 6 and -math.log10(poisson_tail(8, 0.15)) > 6


def test_judged_before_the_crossing_arrival_the_campaign_is_not_seen_yet(tmp_path: Path) -> None:
    store = store_of(tmp_path, campaign=True)
    crossing = T0 + 4 * DAY + 10 * HOUR + 40 * MIN
    assert shilling_report(store, until_ns=crossing)["detections"] == []
    assert len(shilling_report(store, until_ns=crossing + 1)["detections"]) == 1
    assert shilling_report(store, since_ns=crossing + 1)["detections"] == []


def test_an_empty_or_too_short_store_says_it_judged_nothing(tmp_path: Path) -> None:
    store = EventStore(tmp_path / "empty")
    store.recover()
    report = shilling_report(store.root)
    assert report["detections"] == [] and "no watch or rate events" in report["warnings"][0]
    short = EventStore(tmp_path / "short")
    short.recover()
    write_watch(short, 1, [(T0 + i * MIN, i, "a+2000", 0) for i in range(1, 30)])
    short.commit(Checkpoint(seq=1))
    report = shilling_report(short.root)
    assert report["detections"] == [] and "nothing judged" in report["warnings"][0]


def test_a_simulated_campaign_is_detected_within_the_stated_delay(
    shilled_site: ShilledSite,
) -> None:
    record = shilled_site.campaign
    assert record is not None
    start = shilled_site.start_ns + record["start_seconds"] * 10**9
    # What a detector following the store knew the stated delay after the start.
    report = shilling_report(shilled_site.store, until_ns=start + STATED_DELAY)
    (campaign,) = report["campaigns"]
    assert campaign["target"] == shilled_site.target
    assert start <= campaign["detected_at_ns"] <= start + STATED_DELAY
    assert set(report["detections"][0]["account_ids"]) <= set(record["accounts"])
    # Until the campaign began, the store is clean.
    assert shilling_report(shilled_site.store, until_ns=start)["detections"] == []


def slow_scores(
    movies: list[int], times: list[int], traffic: list[tuple[int, int]], fresh_from: int,
    ratio: float, s: ShillingDetectionSettings,
) -> list[tuple[int, float]]:  # fmt: skip
    """(accounts, expected) per fresh arrival, in (movie, time) order, one at a time."""
    window, history = s.window_hours * HOUR, s.baseline_days * DAY
    order = sorted(range(len(times)), key=lambda i: (movies[i], times[i]))
    out = []
    for rank, i in enumerate(order):
        m, t = movies[i], times[i]
        earlier = [j for j in order[: rank + 1] if movies[j] == m]
        count = sum(1 for j in earlier if times[j] > t - window)
        low, high = max(t - window - history, fresh_from), t - window
        baseline = sum(1 for j in order if movies[j] == m and low <= times[j] < high)
        own = baseline / ((high - low) / HOUR) if high > low else 0.0
        in_window = sum(1 for mm, tt in traffic if mm == m and t - window < tt <= t)
        proven = max(in_window - count, 0)
        mean = s.peak_factor * max(own * s.window_hours, ratio * proven)
        out.append((count, max(mean, s.floor_per_hour * s.window_hours)))
    return out


@settings(max_examples=60, deadline=None)
@given(
    # Ten-minute steps, so that arrivals fall exactly on window edges often.
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 240)), min_size=1, max_size=25),
    st.lists(st.tuples(st.integers(0, 2), st.integers(0, 240)), max_size=25),
    st.floats(0.0, 2.0),
    st.sampled_from([0.5, 2.0, 3.0]),
)
def test_window_scores_agree_with_counting_one_arrival_at_a_time(
    fresh_rows: list[tuple[int, int]], other_rows: list[tuple[int, int]], ratio: float,
    window_hours: float,
) -> None:  # fmt: skip
    s = ShillingDetectionSettings(window_hours=window_hours, baseline_days=0.5)
    # Distinct times per movie (ties are counted in arrival order, which the slow count
    # cannot know); every fresh arrival is also traffic.
    fresh_rows = sorted(set(fresh_rows))
    movies = [m for m, _ in fresh_rows]
    times = [T0 + t * 10 * MIN for _, t in fresh_rows]
    traffic = [*zip(movies, times, strict=True)] + [(m, T0 + t * 10 * MIN) for m, t in other_rows]
    ids = np.array(["a+2000", "b+2000", "c+2000"])
    fresh = by_movie_and_time(
        {
            "user_id": np.arange(len(times)),
            "movie_id": ids[movies].astype(object),
            "arrival_ns": np.array(times, dtype=np.int64),
        },
        ids,
    )
    flow = by_movie_and_time(
        {
            "movie_id": ids[[m for m, _ in traffic]].astype(object),
            "arrival_ns": np.array([t for _, t in traffic], dtype=np.int64),
        },
        ids,
    )
    got = window_scores(fresh, flow, T0, ratio, s)
    want = slow_scores(movies, times, traffic, T0, ratio, s)
    assert got["accounts"].tolist() == [c for c, _ in want]
    assert np.allclose(got["expected"], [e for _, e in want])
    tails = [poisson_tail(c, e) for c, e in want]
    for score, tail in zip(got["score"].tolist(), tails, strict=True):
        if tail > 1e-300:  # where the obvious sum is still a number
            assert math.isclose(score, -math.log10(tail), rel_tol=1e-6, abs_tol=1e-9)
