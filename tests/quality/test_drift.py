from __future__ import annotations

from collections import Counter

import numpy as np

from movierec.quality.drift import BatchFacts, DriftMonitor, DriftThresholds

MOVIES = [f"m+{i}+2000" for i in range(50)]


def facts(
    rng: np.random.Generator,
    lines: int = 5000,
    reject: float = 0.01,
    stars: tuple[float, ...] = (0.1, 0.1, 0.3, 0.3, 0.2),
    extra: int = 0,
    unvouched: float = 0.0,
    movie_weights: np.ndarray | None = None,
    users: tuple[int, int] = (1, 500),
) -> BatchFacts:
    weights = movie_weights if movie_weights is not None else np.ones(len(MOVIES))
    codes = rng.choice(len(MOVIES), size=lines, p=weights / weights.sum())
    rejected = Counter({"malformed": int(lines * reject)})
    if extra:
        rejected["extra_field"] = extra
    return BatchFacts(
        lines=lines,
        rejected=rejected,
        ratings=rng.choice([1, 2, 3, 4, 5], 500, p=stars),
        movie_events=lines,
        unvouched_movie_events=int(lines * unvouched),
        movie_ids=MOVIES,
        movie_codes=codes,
        users=rng.integers(*users, lines),
    )


def checks(stats: dict) -> set[str]:
    return {w["check"] for w in stats["warnings"]}


def warmed_up(rng: np.random.Generator) -> DriftMonitor:
    monitor = DriftMonitor(None, None, DriftThresholds(min_movie_events=1000))
    for seq in range(5):
        assert checks(monitor.observe(seq, facts(rng))) == set()
    return monitor


def test_a_steady_stream_raises_nothing() -> None:
    rng = np.random.default_rng(0)
    monitor = warmed_up(rng)
    for seq in range(5, 20):
        assert checks(monitor.observe(seq, facts(rng))) == set()


def test_each_kind_of_drift_is_caught() -> None:
    rng = np.random.default_rng(1)
    cases = {
        "reject_rate": {"reject": 0.2},
        "schema": {"extra": 50},
        "rating_distribution": {"stars": (0.6, 0.3, 0.05, 0.03, 0.02)},
        "unknown_movies": {"unvouched": 0.2},
        "movie_mix": {"movie_weights": np.r_[np.full(5, 100.0), np.ones(45)]},
        "user_mix": {"users": (10_000, 20_000)},
    }
    for expected, change in cases.items():
        monitor = warmed_up(rng)
        assert expected in checks(monitor.observe(9, facts(rng, **change))), expected


def test_baselines_survive_a_restart() -> None:
    rng = np.random.default_rng(2)
    monitor = warmed_up(rng)
    again = DriftMonitor(monitor.state(), monitor.seen, DriftThresholds(min_movie_events=1000))
    assert again.batches == monitor.batches
    assert "rating_distribution" in checks(
        again.observe(9, facts(rng, stars=(0.6, 0.3, 0.05, 0.03, 0.02)))
    )
    assert again.state()["warnings"][-1]["check"] == "rating_distribution"
