"""Rate-only event stores with a known right answer: two groups of users, each liking only
the movies of its own half of the catalogue. The larger group makes popularity favour its
movies, so a model that learned tastes beats popularity clearly on the smaller group."""

from __future__ import annotations

import numpy as np

from movierec.store.events import Checkpoint, EventStore
from tests.support.store import T0, write_rate

DAY = 86_400 * 10**9
HOUR = 3600 * 10**9
GROUP_A, GROUP_B = range(1, 37), range(37, 61)
MOVIES = 20  # per group


def movie(group: str, i: int) -> str:
    return f"{group}{i}+2000"


def _tastes(user: int) -> tuple[str, str]:
    return ("a", "b") if user in GROUP_A else ("b", "a")


def steady_store(root: str, weeks: int = 10, seed: int = 3, newcomers: int = 0) -> EventStore:
    """Every user rates one movie of their taste in every weekly burst (4-5 stars), and now
    and then one of the other taste badly (1-2 stars); nothing happens between bursts.
    `newcomers` more users each rate a few movies in the last week only."""
    rng = np.random.default_rng(seed)
    rows = []
    for user in (*GROUP_A, *GROUP_B):
        liked, other = _tastes(user)
        picks = rng.permutation(MOVIES)[:weeks]
        for week, pick in enumerate(picks.tolist()):
            at = T0 + week * 7 * DAY + user * 60 * 10**9
            rows.append((at, user, movie(liked, pick), int(rng.integers(4, 6))))
            if rng.random() < 0.3:
                bad = int(rng.integers(MOVIES))
                rows.append((at + 10**9, user, movie(other, bad), int(rng.integers(1, 3))))
    last_week = T0 + (weeks - 1) * 7 * DAY
    for user in range(1000, 1000 + newcomers):
        for n, pick in enumerate(rng.permutation(MOVIES)[:3].tolist()):
            rows.append((last_week + HOUR + user * 10**9 + n, user, movie("a", pick), 5))
    return _store(root, rows)


def arrivals_store(root: str, per_user: int = 10, seed: int = 5) -> EventStore:
    """Users arrive one a day, rate all they ever rate within an hour, and never return (a
    replayed public data set looks like this): a time cut leaves no user on both sides."""
    rng = np.random.default_rng(seed)
    rows = []
    for day, user in enumerate((*GROUP_A, *GROUP_B)):
        liked, _ = _tastes(user)
        for n, pick in enumerate(rng.permutation(MOVIES)[:per_user].tolist()):
            rows.append((T0 + day * DAY + n * 60 * 10**9, user, movie(liked, pick), 5))
    return _store(root, rows)


def one_rating_store(root: str) -> EventStore:
    """Every user rated a single movie: nothing can be held out to compare models on."""
    rows = [(T0 + user * HOUR, user, movie(_tastes(user)[0], user % MOVIES), 5) for user in GROUP_A]
    return _store(root, rows)


def _store(root: str, rows: list[tuple[int, int, str, int]]) -> EventStore:
    store = EventStore(root)
    store.recover()
    write_rate(store, 1, rows)
    store.commit(Checkpoint(seq=1))
    return store
