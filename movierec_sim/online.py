"""The online figure: share of recommendation calls followed, within 30 simulated minutes,
by a watch of a recommended movie — for the service that answered, and for the oracle's
best lists on the same visits (the same random draws decide both)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class OnlineTally:
    calls: int = 0
    hits: int = 0
    expected: float = 0.0
    sampled: int = 0
    sampled_service_hits: int = 0
    sampled_service_expected: float = 0.0
    oracle_hits: int = 0
    oracle_expected: float = 0.0
    # day -> [calls, followed, oracle visits, oracle followed]: how the figure moves as
    # models are trained and swapped in.
    by_day: dict[int, list[int]] = field(default_factory=dict)

    def add(
        self,
        day: int,
        hit: np.ndarray,
        expected: np.ndarray,
        sample: np.ndarray,
        oracle_hit: np.ndarray,
        oracle_expected: np.ndarray,
    ) -> None:
        self.calls += len(hit)
        self.hits += int(hit.sum())
        self.expected += float(expected.sum())
        self.sampled += int(sample.sum())
        self.sampled_service_hits += int(hit[sample].sum())
        self.sampled_service_expected += float(expected[sample].sum())
        self.oracle_hits += int(oracle_hit.sum())
        self.oracle_expected += float(oracle_expected.sum())
        row = self.by_day.setdefault(day, [0, 0, 0, 0])
        row[0] += len(hit)
        row[1] += int(hit.sum())
        row[2] += int(sample.sum())
        row[3] += int(oracle_hit.sum())

    def to_json(self, oracle_share: float) -> dict:
        def share(x: float, n: int) -> float | None:
            return round(x / n, 6) if n else None

        return {
            "definition": "share of recommendation calls followed within 30 simulated minutes "
            "by a watch of a recommended movie",
            "calls": self.calls,
            "service": {
                "followed": self.hits,
                "share": share(self.hits, self.calls),
                "expected_share": share(self.expected, self.calls),
            },
            "oracle": {
                "visits": self.sampled,
                "sample_share": oracle_share,
                "followed": self.oracle_hits,
                "share": share(self.oracle_hits, self.sampled),
                "expected_share": share(self.oracle_expected, self.sampled),
                "service_share_same_visits": share(self.sampled_service_hits, self.sampled),
                "service_expected_share_same_visits": share(
                    self.sampled_service_expected, self.sampled
                ),
            },
            "by_day": [
                {
                    "day": day,
                    "calls": row[0],
                    "service_share": share(row[1], row[0]),
                    "oracle_share": share(row[3], row[2]),
                }
                for day, row in sorted(self.by_day.items())
            ],
        }
