"""Properties of the simulated users' choice model."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from movierec_sim import behaviour as bh

B = bh.Behaviour()
TRIALS = 4000
attractions = arrays(np.float64, bh.LIST_LENGTH, elements=st.floats(0.0, B.attraction_max))


def empirical_pick_share(attract: np.ndarray, seed: int) -> tuple[float, np.ndarray]:
    draws = np.random.default_rng(seed).random((TRIALS, len(attract)))
    a = np.tile(attract, (TRIALS, 1))
    picks = bh.cascade_pick(B, a, np.ones_like(a, dtype=bool), draws)
    return float((picks >= 0).mean()), picks


@settings(max_examples=40, deadline=None)
@given(attractions, st.integers(0, 2**32 - 1))
def test_oracle_score_is_the_share_of_visits_that_pick(attract: np.ndarray, seed: int) -> None:
    expected = bh.pick_probability(B, attract[None, :], np.ones((1, len(attract)), bool))[0]
    share, _ = empirical_pick_share(attract, seed)
    sigma = np.sqrt(max(expected * (1 - expected), 1e-4) / TRIALS)
    assert abs(share - expected) < 5 * sigma + 1e-3


@settings(max_examples=40, deadline=None)
@given(attractions, attractions, st.integers(0, 2**32 - 1))
def test_a_list_the_oracle_scores_higher_gets_watched_more(
    first: np.ndarray, second: np.ndarray, seed: int
) -> None:
    ones = np.ones((1, len(first)), bool)
    p1 = bh.pick_probability(B, first[None, :], ones)[0]
    p2 = bh.pick_probability(B, second[None, :], ones)[0]
    if abs(p1 - p2) < 0.05:  # too close to tell apart with 4000 visits
        return
    share1, _ = empirical_pick_share(first, seed)
    share2, _ = empirical_pick_share(second, seed + 1)
    assert (share1 > share2) == (p1 > p2)


@settings(max_examples=40, deadline=None)
@given(attractions, st.floats(0.05, B.attraction_max), st.integers(0, 2**32 - 1))
def test_position_one_beats_position_twenty(others: np.ndarray, movie: float, seed: int) -> None:
    at_top, at_bottom = others.copy(), others.copy()
    at_top[0], at_bottom[-1] = movie, movie
    ones = np.ones((1, len(others)), bool)
    draws = np.random.default_rng(seed).random((TRIALS, len(others)))
    top = bh.cascade_pick(B, np.tile(at_top, (TRIALS, 1)), np.tile(ones, (TRIALS, 1)), draws)
    bottom = bh.cascade_pick(B, np.tile(at_bottom, (TRIALS, 1)), np.tile(ones, (TRIALS, 1)), draws)
    assert (top == 0).mean() > (bottom == len(others) - 1).mean()


@given(
    arrays(np.float64, 8, elements=st.floats(-4, 4)),
    arrays(np.float64, 8, elements=st.floats(-4, 4)),
)
def test_raising_attraction_never_lowers_the_pick_probability(a: np.ndarray, b: np.ndarray) -> None:
    lo = bh.attraction(B, np.minimum(a, b)[None], np.zeros((1, 8), bool))
    hi = bh.attraction(B, np.maximum(a, b)[None], np.zeros((1, 8), bool))
    ones = np.ones((1, 8), bool)
    assert bh.pick_probability(B, hi, ones)[0] >= bh.pick_probability(B, lo, ones)[0] - 1e-12


def test_seen_movies_bore() -> None:
    affinity = np.full((1, 3), 3.0)
    seen = np.array([[True, False, False]])
    a = bh.attraction(B, affinity, seen)
    assert a[0, 0] < 0.1 * a[0, 1]


def test_empty_slots_are_never_picked() -> None:
    attract = np.full((50, bh.LIST_LENGTH), B.attraction_max)
    valid = np.zeros_like(attract, dtype=bool)
    valid[:, 5] = True
    picks = bh.cascade_pick(B, attract, valid, np.random.default_rng(0).random(attract.shape))
    assert set(picks.tolist()) <= {-1, 5}


@given(arrays(np.float64, 50, elements=st.floats(-5, 5)), st.integers(0, 2**32 - 1))
def test_minutes_and_stars_stay_in_range(affinity: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    runtime = rng.integers(60, 200, len(affinity))
    minutes = bh.watch_minutes(B, affinity, runtime, rng.random(50), rng.beta(1.2, 2.5, 50))
    assert ((minutes >= 1) & (minutes <= runtime)).all()
    for scale in (5, 10):
        stars = bh.rating(B, affinity, rng.standard_normal(50), scale)
        assert ((stars >= 1) & (stars <= scale)).all()


def test_liked_movies_are_watched_longer_and_rated_higher() -> None:
    rng = np.random.default_rng(3)
    n = 20000
    runtime = np.full(n, 100)
    finish, fraction, noise = rng.random(n), rng.beta(1.2, 2.5, n), rng.standard_normal(n)
    liked = bh.watch_minutes(B, np.full(n, 2.5), runtime, finish, fraction)
    disliked = bh.watch_minutes(B, np.full(n, -1.0), runtime, finish, fraction)
    assert liked.mean() > disliked.mean() + 20
    assert (
        bh.rating(B, np.full(n, 2.5), noise).mean()
        > bh.rating(B, np.full(n, -1.0), noise).mean() + 1
    )


def test_own_choice_follows_taste() -> None:
    rng = np.random.default_rng(5)
    n, c = 5000, 10
    candidates = np.tile(np.arange(c), (n, 1))
    affinity = np.tile(np.linspace(-1, 2, c), (n, 1))
    seen = np.zeros((n, c), bool)
    picks = bh.own_pick(B, candidates, affinity, seen, rng.gumbel(size=(n, c)))
    counts = np.bincount(picks, minlength=c)
    assert counts[-1] > counts[0] * 10
    seen[:, -1] = True
    picks = bh.own_pick(B, candidates, affinity, seen, rng.gumbel(size=(n, c)))
    assert np.bincount(picks, minlength=c)[-1] < counts[-1] / 10
