"""The oracle: knows the hidden tastes, so it can score any shown list for a user at a
moment and produce the best possible list (the bound of every online metric)."""

from __future__ import annotations

import numpy as np

from movierec_sim.behaviour import LIST_LENGTH, Behaviour, attraction, pick_probability
from movierec_sim.population import Population

_CHUNK = 256  # visits scored against the whole catalogue at once (bounds memory)


class Oracle:
    def __init__(self, population: Population, behaviour: Behaviour) -> None:
        self.population = population
        self.behaviour = behaviour

    def best_lists(self, users: np.ndarray, length: int = LIST_LENGTH) -> np.ndarray:
        """For each user, the movies most likely to be picked, best first: (visits, length),
        -1 where fewer movies exist. Under the cascade model the pick probability of a list
        grows with every member's attraction, so the top movies by affinity are optimal."""
        pop = self.population
        n_movies = len(pop.released)
        length = min(length, n_movies)
        out = np.full((len(users), length), -1, dtype=np.int64)
        for start in range(0, len(users), _CHUNK):
            chunk = users[start : start + _CHUNK]
            scores = pop.affinity_all(chunk)
            scores[:, ~pop.released] = -np.inf
            remembered = pop.history[chunk]
            rows = np.repeat(np.arange(len(chunk)), remembered.shape[1])
            cols = remembered.ravel()
            mask = cols >= 0
            scores[rows[mask], cols[mask]] = -np.inf
            top = np.argpartition(-scores, length - 1, axis=1)[:, :length]
            top_scores = np.take_along_axis(scores, top, axis=1)
            order = np.argsort(-top_scores, axis=1, kind="stable")
            best = np.take_along_axis(top, order, axis=1)
            best[np.take_along_axis(top_scores, order, axis=1) == -np.inf] = -1
            out[start : start + len(chunk)] = best
        return out

    def score_lists(self, users: np.ndarray, lists: np.ndarray) -> np.ndarray:
        """Probability that each user picks something from the shown list (-1 = empty slot)."""
        valid = lists >= 0
        if lists.shape[1] == 0:
            return np.zeros(len(users))
        safe = np.where(valid, lists, 0)
        valid &= self.population.released[safe]
        affinity = self.population.affinity(users, safe)
        seen = self.population.seen(users, safe)
        return pick_probability(self.behaviour, attraction(self.behaviour, affinity, seen), valid)
