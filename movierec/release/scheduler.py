"""`movierec schedule`: continuous, gated retraining with canary releases.

Every `--every` seconds, when the store holds batches newer than the last training's, it
trains and registers every kind (movierec/training) and judges the winner against
production with the release gate (movierec/release/gate.py). A candidate past the gate
does not go to production: it serves a canary (movierec/release/canary.py), and each
`--canary-every` seconds the canary's online figures decide promote, abort or wait. While
a canary runs, nothing else is trained: one candidate at a time, judged on traffic that
only it and production shared. The first model (no production yet) is promoted as
training always did: there is nothing to protect; and until there is one, a training that
could promote nothing is tried again on the next batch, not after `--every`.

What it did is printed as one JSON line per decision, and kept in MODELS/scheduler.json
(when it last trained, on which batch), so a restarted scheduler waits out the rest of
its interval instead of training again at once.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import orjson
from pydantic import Field

from movierec.config import add_options, group
from movierec.progress import Progress
from movierec.registry.versions import Registry
from movierec.release.canary import running, start_canary, step
from movierec.release.canary_rules import CanaryConfig
from movierec.release.gate import Verdict
from movierec.release.train import TrainCommand, release
from movierec.store.events import EventStore, atomic_write
from movierec.training.pipeline import register

STATE = "scheduler.json"


class ScheduleCommand(TrainCommand):
    """`movierec schedule`'s settings: training's and the gate's, and when and how to release."""

    component: ClassVar[str] = "schedule"

    every: float = Field(600.0, gt=0, description="seconds between trainings")
    min_events: int = Field(
        1000, ge=0, description="events the store must hold before the first training"
    )
    canary: CanaryConfig = Field(
        default_factory=CanaryConfig,
        description="how a candidate past the gate is tried on live traffic",
        json_schema_extra=group("canary_"),
    )
    canary_every: float = Field(10.0, gt=0, description="seconds between canary decisions")
    once: bool = Field(False, description="one step (a training or a canary decision), then exit")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schedule", help="retrain on fresh data; release through gate and canary")
    add_options(p, ScheduleCommand)
    p.set_defaults(handler=run_schedule)


def run_schedule(command: ScheduleCommand) -> int:
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    scheduler = Scheduler(command, Progress("schedule", enabled=not command.quiet))
    while not stop.is_set():
        did = scheduler.tick()
        if command.once:
            return 0 if did is not None else 1
        stop.wait(scheduler.pause())
    return 0


class Scheduler:
    def __init__(self, command: ScheduleCommand, progress: Callable[..., None]) -> None:
        self.command = command
        self.progress = progress
        self.models = Path(command.models_dir)
        self.store = EventStore(Path(command.store))
        self.state = _read_state(self.models / STATE)

    def pause(self) -> float:
        """Seconds until the next thing worth doing."""
        if running(self.models) is not None:
            return self.command.canary_every
        since = time.time() - self.state.get("trained_at", 0.0)
        return max(1.0, min(self.command.canary_every, self.command.every - since))

    def tick(self) -> dict[str, Any] | None:
        """One step: a canary decision, or a training when one is due; what was done."""
        if running(self.models) is not None:
            decision = step(Path(self.command.store), self.models, self.command.canary)
            outcome = {"step": "canary", **decision.to_json()}
            self._say(outcome, force=decision.decision != "wait")
            return outcome
        due, why = self._training_due()
        if not due:
            self.progress({"step": "waiting", "why": why})
            return None
        return self._train()

    def _training_due(self) -> tuple[bool, str]:
        checkpoint = self.store.checkpoint()
        if checkpoint is None:
            return False, "the store has no committed batch yet"
        if checkpoint.seq <= self.state.get("trained_batch", 0):
            return False, f"no batch since the last training (batch {checkpoint.seq})"
        stored = sum(checkpoint.counters.get("stored", {}).values())
        if stored < self.command.min_events:
            return False, f"{stored} events stored, fewer than --min-events"
        since = time.time() - self.state.get("trained_at", 0.0)
        if since < self.command.every:
            return False, f"last training {since:.0f} s ago, every {self.command.every:g} s"
        return True, ""

    def _train(self) -> dict[str, Any]:
        command, registry = self.command, Registry(self.models)
        batch = self.store.checkpoint().seq  # type: ignore[union-attr]
        started = time.time()
        try:
            run = register(command, self.progress)
        except ValueError as error:  # a store without usable events, say: try again later
            self._remember(started, batch, str(error))
            outcome = {"step": "train", "error": str(error)}
            self._say(outcome, force=True)
            return outcome

        def canary(candidate: str, verdict: Verdict) -> dict[str, Any]:
            evidence = {"gate": verdict.to_json()}
            try:
                experiment = start_canary(self.models, candidate, command.canary, evidence, "gate")
            except ValueError as error:  # someone started a canary or experiment meanwhile
                return {"experiment": None, "candidate": candidate, "refused": str(error)}
            return {"experiment": experiment.id, "candidate": candidate}

        summary = release(run, registry, command.gate, self.progress, canary)
        # Until a model is in production every call fails: try again on the next batch
        # rather than after a whole interval.
        self._remember(started if summary["production"] else 0.0, batch, None)
        outcome = {
            "step": "train",
            "batch": batch,
            "seconds": round(time.time() - started, 1),
            "production": summary["production"],
            "promoted": summary["promoted"],
            "canary": summary.get("canary"),
            "reason": summary["reason"],
        }
        self._say(outcome, force=True)
        return outcome

    def _remember(self, started: float, batch: int, error: str | None) -> None:
        self.state.update(
            trained_at=started,
            trained_batch=batch,
            trainings=self.state.get("trainings", 0) + 1,
            last_error=error,
        )
        atomic_write(self.models / STATE, orjson.dumps(self.state, option=orjson.OPT_INDENT_2))

    def _say(self, outcome: dict[str, Any], force: bool) -> None:
        if force:  # a decision: on stdout, where whoever runs the scheduler reads them
            sys.stdout.write(orjson.dumps(outcome).decode() + "\n")
            sys.stdout.flush()
        else:
            self.progress(outcome)


def _read_state(path: Path) -> dict[str, Any]:
    try:
        state = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except orjson.JSONDecodeError as error:
        # Losing when we last trained costs one early training at most; say so and go on.
        print(f"movierec schedule: {path} unreadable ({error}); starting afresh", file=sys.stderr)
        return {}
    return state if isinstance(state, dict) else {}
