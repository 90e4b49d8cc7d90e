"""Release records: every decision about the production pointer, typed.

registry.json's `history` is a list of these, oldest first:

    {"time", "from", "to", "decision", "decided_by", "evidence", "reason"}

`decision` is one of DECISIONS; `decided_by` says who or what made it (`train`, `operator`,
`canary`, ...); `evidence` is whatever the decider weighed (scores, checks, verdicts).
Entries written before records were typed hold only time, from, to and reason; they read
as `promote` (or `keep` when from equals to) decided by `train`, which is what wrote them.

"Previous", the target of a rollback, is defined on the sequence of production versions
the records describe, as a stack: a promotion (or any decision that moves the pointer
other than a rollback) pushes its `to`; a rollback pops back down to its `to`. The
previous version is the nearest one below the top of that stack that is not the current
version, was not rolled back from (since it was last promoted), and still loads (its
version directory has provenance.json and model/). Promote a, b, c, then roll back: b;
again: a; again: nothing, and the rollback is refused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

DECISIONS = ("promote", "keep", "rollback", "abort", "canary")


class NoPreviousError(ValueError):
    """A rollback was asked for and there is no version to go back to."""


@dataclass(frozen=True)
class ReleaseRecord:
    time: str
    from_version: str | None
    to_version: str | None
    decision: str
    decided_by: str
    reason: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.decision not in DECISIONS:
            raise ValueError(f"unknown release decision {self.decision!r}: one of {DECISIONS}")
        if not self.decided_by:
            raise ValueError("a release record needs who or what decided (decided_by)")

    @property
    def moves(self) -> bool:
        """Whether this decision changed the production pointer."""
        return self.from_version != self.to_version

    def to_json(self) -> dict[str, Any]:
        record = asdict(self)
        # "from" and "to" are the names old entries (and readers of them) use.
        return {
            "time": record.pop("time"),
            "from": record.pop("from_version"),
            "to": record.pop("to_version"),
            **record,
        }

    @classmethod
    def from_json(cls, entry: dict[str, Any]) -> ReleaseRecord:
        old_decision = "keep" if entry.get("from") == entry.get("to") else "promote"
        return cls(
            time=entry["time"],
            from_version=entry.get("from"),
            to_version=entry.get("to"),
            decision=entry.get("decision", old_decision),
            decided_by=entry.get("decided_by", "train"),
            reason=entry.get("reason", ""),
            evidence=dict(entry.get("evidence") or {}),
        )


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def records(state: dict[str, Any]) -> list[ReleaseRecord]:
    """The release records of a registry state (registry.json), old entries included."""
    return [ReleaseRecord.from_json(entry) for entry in state.get("history", [])]


def _stack(history: Iterable[ReleaseRecord]) -> tuple[list[str], set[str]]:
    """(production versions as a stack, versions rolled back from since last promoted)."""
    stack: list[str] = []
    rolled_back: set[str] = set()
    for record in history:
        if not record.moves:
            continue
        if not stack and record.from_version is not None:
            # History that begins after production was first set: its `from` is the base.
            stack.append(record.from_version)
        if record.decision == "rollback":
            if record.from_version is not None:
                rolled_back.add(record.from_version)
            while stack and stack[-1] != record.to_version:
                stack.pop()
            if not stack and record.to_version is not None:
                stack.append(record.to_version)
        elif record.to_version is not None:
            stack.append(record.to_version)
            rolled_back.discard(record.to_version)
    return stack, rolled_back


def previous(
    history: Iterable[ReleaseRecord], current: str | None, loads: Callable[[str], bool]
) -> str:
    """The version a rollback from `current` goes to (see the module's docstring)."""
    stack, rolled_back = _stack(history)
    for version in reversed(stack):
        if version == current or version in rolled_back:
            continue
        if loads(version):
            return version
    raise NoPreviousError(
        f"nothing to roll back to: production {current} has no earlier production version "
        "that still loads and was not itself rolled back from"
    )
