"""Invalid recommendation requests: hostile or broken clients probing the service.

They are sent beside the real calls but are not site visits, so they never reach the log;
the ledger counts their outcomes by form."""

from __future__ import annotations

import numpy as np

FORMS: tuple[tuple[str, str], ...] = (
    ("letters", "/recommend/abc"),
    ("negative", "/recommend/-1"),
    ("zero", "/recommend/0"),
    ("huge", "/recommend/" + "9" * 25),
    ("long_path", "/recommend/" + "a" * 6000),
    ("fraction", "/recommend/1.5"),
    ("extra_segment", "/recommend/42/extra"),
    ("empty", "/recommend/"),
    ("no_id", "/recommend"),
    ("encoded", "/recommend/%00%ff"),
    ("unknown_path", "/recommendations/42"),
)


class InvalidRequests:
    def __init__(self, share: float, rng: np.random.Generator) -> None:
        if not 0.0 <= share <= 1.0:
            raise ValueError("request fault share must be within 0..1")
        self.share = share
        self.rng = rng

    def draw(self, calls: int) -> list[tuple[str, str]]:
        """(form, path) of the invalid requests accompanying this many real calls."""
        if self.share == 0 or calls == 0:
            return []
        count = int(self.rng.binomial(calls, self.share))
        picks = self.rng.integers(0, len(FORMS), count)
        return [FORMS[i] for i in picks.tolist()]
