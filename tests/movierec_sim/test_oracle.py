from __future__ import annotations

import itertools

import numpy as np

from movierec_sim.behaviour import Behaviour
from movierec_sim.oracle import Oracle
from movierec_sim.population import Population
from movierec_sim.world import World, WorldConfig


def make(users: int = 50, movies: int = 30) -> tuple[Population, Oracle]:
    world = World(WorldConfig(users=users, movies=movies, seed=5))
    population = Population(world, Behaviour())
    population.start_day(0, np.random.default_rng(0))
    return population, Oracle(population, Behaviour())


def test_best_list_beats_every_other_list_of_the_same_length() -> None:
    population, oracle = make(users=20, movies=9)
    users = np.arange(20)
    best = oracle.best_lists(users, length=3)
    best_score = oracle.score_lists(users, best)
    released = np.flatnonzero(population.released)
    for combo in itertools.permutations(released.tolist(), 3):
        lists = np.tile(np.array(combo), (20, 1))
        assert (oracle.score_lists(users, lists) <= best_score + 1e-12).all()


def test_best_list_is_sorted_and_skips_seen_and_unreleased() -> None:
    population, oracle = make()
    users = np.arange(50)
    best = oracle.best_lists(users)
    population.remember(users, best[:, 0])
    after = oracle.best_lists(users)
    assert not (after == best[:, :1]).any(axis=1).any()  # the watched movie is gone
    assert population.released[after[after >= 0]].all()
    affinity = population.affinity(users, np.maximum(after, 0))
    assert (np.diff(affinity, axis=1) <= 1e-6).all()


def test_a_catalogue_smaller_than_a_list_pads_with_empty_slots() -> None:
    _, oracle = make(users=5, movies=4)
    best = oracle.best_lists(np.arange(5))
    assert best.shape[1] == 4
    assert oracle.score_lists(np.arange(5), np.full((5, 20), -1)).max() == 0
