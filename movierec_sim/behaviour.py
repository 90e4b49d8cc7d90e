"""How simulated users choose, watch and rate: vectorised over a batch of visits.

Every function takes its random draws as arguments (common random numbers): the same
draws with a different shown list give the counterfactual outcome, which is how the
oracle's lists are judged on the very same visits the real service answered.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

NO_MOVIE = -1
LIST_LENGTH = 20


@dataclass(frozen=True, slots=True)
class Behaviour:
    # Shown list (cascade model): position i is examined with probability
    # examine_first * examine_decay**i; an examined movie attracts with
    # attraction_max * sigmoid(attraction_slope * (affinity - attraction_threshold)):
    # even a perfect match is often not what the user is in the mood for.
    examine_first: float = 0.8
    examine_decay: float = 0.85
    attraction_max: float = 0.6
    attraction_slope: float = 2.0
    attraction_threshold: float = 2.5
    # A seen movie bores: its attraction is multiplied by this.
    seen_attraction: float = 0.03
    # Own choice: candidates drawn by popularity, then the one maximising
    # own_taste_weight * affinity + Gumbel noise (a softmax over popularity x taste).
    own_candidates: int = 200
    # Candidates are drawn with probability popularity ** candidate_popularity (1: in
    # proportion to popularity, 0: uniformly): people hear of popular movies more often,
    # but choose by taste.
    candidate_popularity: float = 0.2
    own_taste_weight: float = 12.0
    seen_penalty: float = 12.0
    # Share of visits that ask the service for recommendations.
    ask_share: float = 0.75
    # Share of visits that end without watching when nothing shown attracted.
    leave_share: float = 0.12
    # Seconds between the request and the first minute streamed.
    start_delay: tuple[int, int] = (5, 180)
    # Watching: finish with probability sigmoid(finish_slope * (affinity - finish_threshold)).
    finish_slope: float = 2.5
    finish_threshold: float = 1.0
    # Rating after watching: base probability, raised by strong feelings either way.
    rate_base: float = 0.10
    rate_strong: float = 0.30
    rating_slope: float = 1.2
    rating_noise: float = 0.6
    rating_center: float = 1.2
    # Daily random-walk step of every taste factor.
    taste_drift: float = 0.02
    # How many recent watches a user remembers (and is bored by).
    memory: int = 32

    def examination(self, length: int = LIST_LENGTH) -> np.ndarray:
        return self.examine_first * self.examine_decay ** np.arange(length, dtype=np.float64)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def attraction(b: Behaviour, affinity: np.ndarray, seen: np.ndarray) -> np.ndarray:
    a = b.attraction_max * sigmoid(b.attraction_slope * (affinity - b.attraction_threshold))
    return np.where(seen, a * b.seen_attraction, a)


def cascade_pick(
    b: Behaviour, attract: np.ndarray, valid: np.ndarray, draws: np.ndarray
) -> np.ndarray:
    """Position picked from each shown list, or -1: the first position whose draw falls
    under examination x attraction. attract, valid, draws: (visits, LIST_LENGTH)."""
    p = b.examination(attract.shape[1])[None, :] * attract
    hit = valid & (draws < p)
    first = hit.argmax(axis=1)
    return np.where(hit.any(axis=1), first, -1)


def pick_probability(b: Behaviour, attract: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Probability that a visit picks something from its shown list (the oracle's score)."""
    p = np.where(valid, b.examination(attract.shape[1])[None, :] * attract, 0.0)
    return 1.0 - np.prod(1.0 - p, axis=1)


def own_pick(
    b: Behaviour, candidates: np.ndarray, affinity: np.ndarray, seen: np.ndarray, gumbel: np.ndarray
) -> np.ndarray:
    """Column of the candidate each visit chooses on its own. All arrays (visits, C)."""
    utility = b.own_taste_weight * affinity - b.seen_penalty * seen + gumbel
    utility = np.where(candidates >= 0, utility, -np.inf)
    return utility.argmax(axis=1)


def watch_minutes(
    b: Behaviour,
    affinity: np.ndarray,
    runtime: np.ndarray,
    finish_draw: np.ndarray,
    fraction_draw: np.ndarray,
) -> np.ndarray:
    """Minutes streamed: the whole runtime when the user finishes, else a share of it."""
    finishes = finish_draw < sigmoid(b.finish_slope * (affinity - b.finish_threshold))
    partial = np.ceil(runtime * fraction_draw).astype(np.int64)
    return np.maximum(1, np.where(finishes, runtime, partial)).astype(np.int64)


def rating(b: Behaviour, affinity: np.ndarray, noise: np.ndarray, scale: int = 5) -> np.ndarray:
    """Stars given: taste plus noise, on the site's scale (1..scale)."""
    raw = 3.0 + b.rating_slope * (affinity - b.rating_center) + b.rating_noise * noise
    if scale != 5:
        raw = 1.0 + (raw - 1.0) * (scale - 1) / 4.0
    return np.clip(np.rint(raw), 1, scale).astype(np.int64)


def rate_probability(b: Behaviour, affinity: np.ndarray) -> np.ndarray:
    strength = np.abs(2.0 * sigmoid(1.5 * (affinity - b.rating_center)) - 1.0)
    return b.rate_base + b.rate_strong * strength
