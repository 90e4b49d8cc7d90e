"""A deliberately slow model: popularity's lists, answered late.

It ranks exactly as time-decayed popularity does (movierec/models/popularity.py) and
declares an answer delay, `delay_ms` (800 by default: longer than the site's 600 ms
timeout). The service reads the delay from the model when it builds the version's snapshot
(Snapshot.answer_delay) and waits that long before each answer of this version; every
other kind declares none and is answered at once, as before.

It is never a default candidate of training; it exists so that a canary release can be
shown to abort a candidate whose lists are fine but whose answers come too late
(tests/release/test_canary.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from movierec.models.base import require_float, require_int
from movierec.models.popularity import Params as PopularityParams
from movierec.models.popularity import PopularityRecommender


@dataclass(frozen=True)
class Params(PopularityParams):
    delay_ms: int = 800  # how long each answer waits, milliseconds

    def __post_init__(self) -> None:
        require_float("half_life_days", self.half_life_days, 0.0, strict=True)
        require_int("delay_ms", self.delay_ms, 0)


class SlowRecommender(PopularityRecommender):
    name = "slow"
    Params = Params  # type: ignore[assignment]
    params: Params  # type: ignore[assignment]

    @property
    def answer_delay(self) -> float:
        """Seconds the service waits before each answer of this model."""
        return self.params.delay_ms / 1000
