"""The simulated users' changing state: who has joined, who visits when, who is busy
watching, what each remembers having watched, and how tastes drift."""

from __future__ import annotations

import numpy as np

from movierec_sim.behaviour import Behaviour
from movierec_sim.world import World

DAY = 86_400

# Relative activity by hour of day (evenings busy, nights quiet); mean 1.
_HOURLY = np.array(
    [
        0.5,
        0.35,
        0.25,
        0.2,
        0.2,
        0.25,
        0.4,
        0.6,
        0.7,
        0.75,
        0.8,
        0.9,
        1.0,
        1.0,
        0.95,
        0.95,
        1.05,
        1.2,
        1.5,
        1.9,
        2.2,
        2.2,
        1.7,
        1.0,
    ]
)
HOURLY_ACTIVITY = _HOURLY / _HOURLY.mean()


class Population:
    def __init__(self, world: World, behaviour: Behaviour) -> None:
        self.world = world
        self.behaviour = behaviour
        n = world.n_users
        self.taste = world.user_taste.copy()
        self.busy_until = np.zeros(n, dtype=np.int64)
        self.history = np.full((n, behaviour.memory), -1, dtype=np.int32)
        self.history_next = np.zeros(n, dtype=np.int32)
        # Users in the order they join, with cumulative activity for fast weighted sampling.
        self.join_order = np.argsort(world.user_join_day, kind="stable")
        self.join_seconds = (world.user_join_day[self.join_order] * DAY).astype(np.int64)
        self.activity_cumsum = np.cumsum(world.user_activity[self.join_order].astype(np.float64))
        self.day = -1
        self.released = np.zeros(world.n_movies, dtype=bool)
        self.popularity_cumsum = np.zeros(world.n_movies)

    def joined_count(self, t: int) -> int:
        return int(np.searchsorted(self.join_seconds, t, side="right"))

    def start_day(self, day: int, rng: np.random.Generator) -> None:
        """Daily changes: releases, the popularity of what is new, taste drift."""
        w = self.world
        if self.day >= 0 and self.behaviour.taste_drift > 0:
            step = rng.standard_normal(self.taste.shape, dtype=np.float32)
            self.taste += (self.behaviour.taste_drift / np.sqrt(self.taste.shape[1])) * step
        self.day = day
        self.released = w.movie_release_day <= day
        age = day - w.movie_release_day
        novelty = np.where(w.movie_release_day > 0, 1.0 + 4.0 * np.exp(-np.maximum(age, 0) / 14), 1)
        appeal = (w.movie_popularity * novelty) ** self.behaviour.candidate_popularity
        weights = np.where(self.released, appeal, 0.0)
        self.popularity_cumsum = np.cumsum(weights)

    def visits(self, t0: int, t1: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """(user indices, visit times) of visits starting in [t0, t1), time-ordered, at most
        one per user, and none by a user still watching something."""
        joined = self.joined_count(t1 - 1)
        if joined == 0:
            return np.empty(0, np.int64), np.empty(0, np.int64)
        hour = (t0 // 3600) % 24
        total = self.activity_cumsum[joined - 1]
        expected = total * (t1 - t0) / DAY * HOURLY_ACTIVITY[hour]
        count = int(rng.poisson(expected))
        picks = np.searchsorted(self.activity_cumsum[:joined], rng.random(count) * total)
        picks = np.minimum(picks, joined - 1)
        times = rng.integers(t0, t1, count)
        # A user who joins mid-tick cannot visit before joining.
        times = np.maximum(times, self.join_seconds[picks])
        users = self.join_order[picks]
        order = np.argsort(times, kind="stable")
        users, times = users[order], times[order]
        _, first = np.unique(users, return_index=True)
        keep = np.zeros(len(users), dtype=bool)
        keep[first] = True
        keep &= self.busy_until[users] <= times
        return users[keep], times[keep]

    def candidates(self, count: int, per_visit: int, rng: np.random.Generator) -> np.ndarray:
        """Movies each visit considers on its own, drawn by popularity among released ones."""
        total = self.popularity_cumsum[-1]
        draws = rng.random((count, per_visit)) * total
        return np.minimum(
            np.searchsorted(self.popularity_cumsum, draws, side="right"),
            len(self.popularity_cumsum) - 1,
        )

    def seen(self, users: np.ndarray, movies: np.ndarray) -> np.ndarray:
        """Whether each user remembers watching each movie; movies is (visits, k)."""
        remembered = self.history[users]  # (visits, memory)
        return (movies[:, :, None] == remembered[:, None, :]).any(axis=2)

    def remember(self, users: np.ndarray, movies: np.ndarray) -> None:
        slot = self.history_next[users] % self.behaviour.memory
        self.history[users, slot] = movies
        self.history_next[users] += 1

    def affinity(self, users: np.ndarray, movies: np.ndarray) -> np.ndarray:
        """Current hidden affinity (drifted tastes) for movies of shape (visits, k)."""
        w = self.world
        scores = np.einsum("vf,vkf->vk", self.taste[users], w.movie_vectors[movies])
        return scores + w.movie_quality[movies]

    def affinity_all(self, users: np.ndarray) -> np.ndarray:
        """Affinity of each user for every movie: (visits, movies)."""
        w = self.world
        return self.taste[users] @ w.movie_vectors.T + w.movie_quality[None, :]
