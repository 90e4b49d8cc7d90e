"""The simulator's ledger: the truth about every line it wrote and every call it made.

Tests of every later capability compare their own counts with it exactly, so it counts
each written line in exactly one place: `clean` (by event kind) or `faults` (by dirt) —
or, after a resume from a crash, `unaccounted`: lines a killed run wrote after its last
checkpoint, in the log but never classified (`resume.py`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from movierec_sim.faults import DUPLICATE, EVENT_KINDS, FAULT_KINDS, OUT_OF_ORDER

# Labels of written lines: 0..2 clean event kinds, FAULT_BASE + fault index for dirt, and
# REORDERED_BASE + event kind for clean lines delivered late.
FAULT_BASE = 10
REORDERED_BASE = 100


@dataclass
class Ledger:
    settings: dict[str, Any]
    lines: int = 0
    clean: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    fault_lines: dict[str, list[int]] = field(default_factory=dict)
    reordered: Counter[str] = field(default_factory=Counter)
    reordered_lines: list[int] = field(default_factory=list)
    calls: Counter[str] = field(default_factory=Counter)
    call_latencies: list[int] = field(default_factory=list)
    invalid_requests: dict[str, Counter[str]] = field(default_factory=dict)
    online: dict[str, Any] = field(default_factory=dict)
    world: dict[str, Any] = field(default_factory=dict)
    simulated: dict[str, Any] = field(default_factory=dict)
    api: dict[str, Any] = field(default_factory=dict)
    # One entry per resume from a state directory (`resume.py`), and the lines a killed run
    # wrote after its last checkpoint (counted so line numbers stay those of the log).
    resumed: list[dict[str, Any]] = field(default_factory=list)
    unaccounted: int = 0
    # Campaigns injected into the log (`attacks.py`): their accounts, times and lines.
    attacks: list[dict[str, Any]] = field(default_factory=list)

    def count_written(self, labels: np.ndarray) -> None:
        """Account for a block of written lines, labelled as above, in log order."""
        first = self.lines + 1  # 1-based line numbers
        counts = np.bincount(labels, minlength=REORDERED_BASE + len(EVENT_KINDS))
        for kind, name in enumerate(EVENT_KINDS):
            self.clean[name] += int(counts[kind] + counts[REORDERED_BASE + kind])
            self.reordered[name] += int(counts[REORDERED_BASE + kind])
        late = np.flatnonzero(labels >= REORDERED_BASE)
        self.reordered_lines.extend((late + first).tolist())
        for index, name in enumerate(FAULT_KINDS):
            if name == OUT_OF_ORDER:
                continue
            at = np.flatnonzero(labels == FAULT_BASE + index)
            if len(at):
                self.faults[name] += len(at)
                self.fault_lines.setdefault(name, []).extend((at + first).tolist())
        self.lines += len(labels)

    def count_calls(self, statuses: Iterable[int], latencies: Iterable[int]) -> None:
        self.calls.update(str(s) for s in statuses)
        self.call_latencies.extend(latencies)

    def count_invalid(self, form: str, status: int) -> None:
        self.invalid_requests.setdefault(form, Counter())[str(status)] += 1

    def to_json(self) -> dict[str, Any]:
        latencies = np.asarray(self.call_latencies or [0])
        dirty = sum(self.faults.values())
        return {
            "settings": self.settings,
            "world": self.world,
            "simulated": self.simulated,
            "resumed": self.resumed,
            "lines": self.lines,
            "unaccounted": self.unaccounted,
            "clean": {k: self.clean.get(k, 0) for k in EVENT_KINDS},
            "faults": {k: self.faults.get(k, 0) for k in FAULT_KINDS if k != OUT_OF_ORDER},
            "fault_lines": dict(sorted(self.fault_lines.items())),
            "reordered": {
                "total": sum(self.reordered.values()),
                "by_kind": {k: self.reordered.get(k, 0) for k in EVENT_KINDS},
                "lines": self.reordered_lines,
            },
            # What a correct ingestion of this log must end with.
            "expected_ingest": {
                "lines_read": self.lines,
                "stored": {k: self.clean.get(k, 0) for k in EVENT_KINDS},
                "duplicates": self.faults.get(DUPLICATE, 0),
                "rejected": dirty - self.faults.get(DUPLICATE, 0),
            },
            "recommendation_calls": {
                "total": sum(self.calls.values()),
                "by_status": dict(sorted(self.calls.items())),
                "latency_ms": {
                    "p50": float(np.percentile(latencies, 50)),
                    "p99": float(np.percentile(latencies, 99)),
                    "max": int(latencies.max()),
                },
            },
            "invalid_requests": {
                form: dict(sorted(c.items())) for form, c in sorted(self.invalid_requests.items())
            },
            "online": self.online,
            "api": self.api,
            "attacks": self.attacks,
        }
