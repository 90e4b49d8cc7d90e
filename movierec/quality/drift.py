"""Per-batch data-quality statistics and drift checks, against what the stream did before.

Each batch is summarised (reject rate by reason, fields the format never had, rating
histogram, share of events on movies the catalogue does not vouch for, movie mix, share of
events by users never seen before) and compared with the running baseline; a comparison
over its threshold becomes a warning in the report. The baseline is a small JSON state
kept in the checkpoint, so checks continue across restarts.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

_EWMA = 0.2  # weight of the newest batch in the running baselines
_TOP_MOVIES = 1000  # movies remembered by name for the mix check; the rest pooled
_USER_BITS = 1 << 24  # users remembered in a bitset (ids hashed into it)


@dataclass(frozen=True, slots=True)
class DriftThresholds:
    min_lines: int = 1000  # batches smaller than this are not judged
    warmup_batches: int = 3  # batches before baselines are trusted
    reject_rate_factor: float = 3.0
    reject_rate_margin: float = 0.02
    extra_field_share: float = 0.001
    rating_tvd: float = 0.2
    min_ratings: int = 300
    unknown_movie_share: float = 0.01
    movie_mix_tvd: float = 0.5
    min_movie_events: int = 10_000
    new_user_share: float = 0.05
    new_user_factor: float = 3.0


@dataclass
class BatchFacts:
    """What drift checks need from one processed batch."""

    lines: int
    rejected: Counter
    ratings: np.ndarray  # stars of accepted rate events
    movie_events: int
    unvouched_movie_events: int  # movie is not (yet) known to the catalogue
    movie_ids: list[str]  # movie of each accepted watch/rate event, as codes below
    movie_codes: np.ndarray
    users: np.ndarray  # user of each accepted event


class DriftMonitor:
    def __init__(
        self,
        state: dict[str, Any] | None,
        seen_users: np.ndarray | None,
        thresholds: DriftThresholds | None = None,
        rating_scale: int = 5,
    ) -> None:
        self.t = thresholds or DriftThresholds()
        s = state or {}
        self.batches: int = s.get("batches", 0)
        self.reject_rate: float = s.get("reject_rate", 0.0)
        self.unvouched: float = s.get("unvouched", 0.0)
        self.new_users: float = s.get("new_users", 0.0)
        self.ratings = np.asarray(s.get("ratings", [0] * rating_scale), dtype=np.int64)
        self.movies: dict[str, int] = dict(s.get("movies", {}))
        self.warnings: list[dict[str, Any]] = list(s.get("warnings", []))
        self.seen = seen_users if seen_users is not None else np.zeros(_USER_BITS // 8, np.uint8)

    def state(self) -> dict[str, Any]:
        top = dict(Counter(self.movies).most_common(_TOP_MOVIES))
        return {
            "batches": self.batches,
            "reject_rate": self.reject_rate,
            "unvouched": self.unvouched,
            "new_users": self.new_users,
            "ratings": self.ratings.tolist(),
            "movies": top,
            "warnings": self.warnings[-100:],
        }

    def observe(self, seq: int, facts: BatchFacts) -> dict[str, Any]:
        """Statistics of the batch, and warnings it raised (also kept in self.warnings)."""
        t = self.t
        rejected = sum(facts.rejected.values())
        stats: dict[str, Any] = {
            "seq": seq,
            "lines": facts.lines,
            "reject_rate": rejected / max(facts.lines, 1),
            "rejected": dict(facts.rejected),
            "extra_field_share": facts.rejected.get("extra_field", 0) / max(facts.lines, 1),
            "unvouched_share": facts.unvouched_movie_events / max(facts.movie_events, 1),
        }
        judged = facts.lines >= t.min_lines and self.batches >= t.warmup_batches
        found: list[dict[str, Any]] = []

        def warn(check: str, value: float, limit: float, message: str) -> None:
            found.append(
                {
                    "seq": seq,
                    "check": check,
                    "value": round(value, 6),
                    "threshold": round(limit, 6),
                    "message": message,
                }
            )

        limit = max(
            self.reject_rate * t.reject_rate_factor, self.reject_rate + t.reject_rate_margin
        )
        if judged and stats["reject_rate"] > limit:
            warn(
                "reject_rate",
                stats["reject_rate"],
                limit,
                f"reject rate {stats['reject_rate']:.2%} against a baseline of "
                f"{self.reject_rate:.2%}",
            )
        if facts.lines >= t.min_lines and stats["extra_field_share"] > t.extra_field_share:
            warn(
                "schema",
                stats["extra_field_share"],
                t.extra_field_share,
                f"{facts.rejected['extra_field']} lines carry fields the format never had",
            )
        limit = max(self.unvouched * 3, t.unknown_movie_share)
        if judged and stats["unvouched_share"] > limit:
            warn(
                "unknown_movies",
                stats["unvouched_share"],
                limit,
                "spike of events on movies the catalogue does not know",
            )
        self._ratings(facts, stats, warn)
        self._movies(facts, stats, warn, judged)
        self._users(facts, stats, warn, judged)
        if facts.lines >= t.min_lines:
            self.reject_rate = _ewma(self.reject_rate, stats["reject_rate"], self.batches)
            self.unvouched = _ewma(self.unvouched, stats["unvouched_share"], self.batches)
            self.batches += 1
        stats["warnings"] = found
        self.warnings.extend(found)
        return stats

    def _ratings(self, facts: BatchFacts, stats: dict, warn: Any) -> None:
        hist = np.bincount(
            np.clip(facts.ratings, 1, len(self.ratings)) - 1, minlength=len(self.ratings)
        )[: len(self.ratings)]
        stats["ratings"] = hist.tolist()
        if hist.sum() >= self.t.min_ratings and self.ratings.sum() >= 3 * self.t.min_ratings:
            tvd = total_variation(hist, self.ratings)
            stats["rating_tvd"] = tvd
            if tvd > self.t.rating_tvd:
                warn(
                    "rating_distribution",
                    tvd,
                    self.t.rating_tvd,
                    "the distribution of ratings moved away from the stream's history",
                )
        self.ratings += hist

    def _movies(self, facts: BatchFacts, stats: dict, warn: Any, judged: bool) -> None:
        counts = np.bincount(facts.movie_codes, minlength=len(facts.movie_ids))
        batch = {facts.movie_ids[i]: int(c) for i, c in enumerate(counts) if c}
        if judged and counts.sum() >= self.t.min_movie_events and self.movies:
            names = set(batch) | set(self.movies)
            a = np.array([batch.get(n, 0) for n in names], dtype=float)
            b = np.array([self.movies.get(n, 0) for n in names], dtype=float)
            tvd = total_variation(a, b)
            stats["movie_mix_tvd"] = tvd
            if tvd > self.t.movie_mix_tvd:
                warn(
                    "movie_mix",
                    tvd,
                    self.t.movie_mix_tvd,
                    "what is watched moved away from the stream's history",
                )
        for name, count in batch.items():
            self.movies[name] = self.movies.get(name, 0) + count
        if len(self.movies) > 4 * _TOP_MOVIES:
            self.movies = dict(Counter(self.movies).most_common(_TOP_MOVIES))

    def _users(self, facts: BatchFacts, stats: dict, warn: Any, judged: bool) -> None:
        if len(facts.users) == 0:
            return
        bits = (facts.users.astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)
        byte, bit = (bits // 8).astype(np.int64), (bits % 8).astype(np.uint8)
        new = (self.seen[byte] >> bit) & 1 == 0
        share = float(new.mean())
        stats["new_user_share"] = share
        limit = max(self.new_users * self.t.new_user_factor, self.t.new_user_share)
        if judged and share > limit:
            warn("user_mix", share, limit, "many events by users never seen before")
        np.bitwise_or.at(self.seen, byte, (1 << bit).astype(np.uint8))
        # Early on every user is new: the baseline starts once the warm-up is over.
        warm = self.batches - self.t.warmup_batches
        if facts.lines >= self.t.min_lines and warm >= 0:
            self.new_users = _ewma(self.new_users, share, warm)


def _ewma(baseline: float, value: float, seen: int) -> float:
    return value if seen == 0 else (1 - _EWMA) * baseline + _EWMA * value


def total_variation(a: np.ndarray, b: np.ndarray) -> float:
    """Total variation distance between two histograms."""
    return float(0.5 * np.abs(a / max(a.sum(), 1) - b / max(b.sum(), 1)).sum())
