"""Canary releases: a candidate serves a share of users beside production, and the online
figures decide whether it replaces production or is aborted (movierec/release/
canary_rules.py holds the rules).

    MODELS/canary.json       the running canary: its experiment, candidate, production,
                             start time and settings (absent: no canary). A scheduler that
                             restarts reads it and carries on.
    MODELS/canary/online     what the canary's online figures have read so far

`start_canary` starts an experiment with arms control=<production>:(1-share) and
canary=<candidate>:share and writes a `canary` release record (production does not move).
`step` reads what is new in the store and the answer log, and decides: "none" (no canary),
"wait", "promote" (Registry.promote, decided_by canary) or "abort" (an `abort` release
record); both end the experiment and remove canary.json. An experiment stopped or a
production pointer moved by someone else meanwhile is said so, as an abort, not guessed
around.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from movierec.online.experiment import experiment_report
from movierec.online.figures import online_report
from movierec.registry.experiments import Arm, Experiment, Experiments
from movierec.registry.versions import Registry
from movierec.release.canary_rules import CanaryConfig, Decision, decide, figures_of
from movierec.store.events import atomic_write

STATE = "canary.json"
ONLINE = Path("canary") / "online"
CONTROL, CANARY = "control", "canary"


@dataclass(frozen=True)
class CanaryDecision:
    decision: Decision
    reasons: list[str]
    evidence: dict[str, Any] = field(default_factory=dict)
    experiment: str | None = None
    candidate: str | None = None
    production: str | None = None  # production after the decision

    def to_json(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "reasons": self.reasons,
            "experiment": self.experiment,
            "candidate": self.candidate,
            "production": self.production,
            "evidence": self.evidence,
        }


def state_path(models_dir: str | Path) -> Path:
    return Path(models_dir) / STATE


def running(models_dir: str | Path) -> dict[str, Any] | None:
    """The running canary's state (canary.json), or None."""
    path = state_path(models_dir)
    if not path.exists():
        return None
    return json.loads(path.read_text())


def start_canary(
    models_dir: str | Path,
    candidate: str,
    config: CanaryConfig,
    evidence: dict[str, Any] | None = None,
    decided_by: str = "operator",
) -> Experiment:
    """Start serving `candidate` to `config.share` of users beside production. Raises
    ValueError, changing nothing, when there is no production, the candidate is
    production, is unknown or does not load, or a canary or an experiment is running."""
    registry = Registry(models_dir)
    experiments = Experiments(models_dir)
    production = registry.production()
    known = {entry["version"] for entry in registry.read()["versions"]}
    if production is None:
        raise ValueError("no production version: a canary needs one to compare against")
    if candidate == production:
        raise ValueError(f"{candidate} is already production")
    if candidate not in known or not registry.loads(candidate):
        raise ValueError(f"unknown version {candidate!r}: not a loadable version of this registry")
    if running(models_dir) is not None:
        raise ValueError(f"a canary is already running ({state_path(models_dir)})")
    current = experiments.current()
    if current is not None:
        raise ValueError(
            f"experiment {current.id} is running: stop it first (movierec experiment stop)"
        )
    arms = [Arm(CONTROL, production, 1 - config.share), Arm(CANARY, candidate, config.share)]
    experiment = experiments.start(
        arms,
        known,
        min_effect=config.min_effect,
        alpha=config.alpha,
        notes={"canary": {"candidate": candidate, "decided_by": decided_by}},
    )
    state = {
        "experiment": experiment.id,
        "candidate": candidate,
        "production": production,
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "decided_by": decided_by,
        "config": config.model_dump(),
    }
    atomic_write(state_path(models_dir), orjson.dumps(state, option=orjson.OPT_INDENT_2))
    registry.hold(
        "canary",
        candidate,
        f"canary started: {candidate} serves {config.share:.0%} of users beside "
        f"production {production} (experiment {experiment.id})",
        evidence={"experiment": experiment.id, "share": config.share, **(evidence or {})},
        decided_by=decided_by,
    )
    return experiment


def step(
    store: str | Path, models_dir: str | Path, config: CanaryConfig | None = None
) -> CanaryDecision:
    """One decision on the running canary (None: the settings it was started with).
    Raises ValueError when the store has no committed events to read."""
    models = Path(models_dir)
    state = running(models)
    if state is None:
        return CanaryDecision("none", ["no canary is running"])
    config = config or CanaryConfig(**state["config"])
    registry = Registry(models)
    experiments = Experiments(models)
    candidate, production = state["candidate"], state["production"]
    base = {"experiment": state["experiment"], "started": state["started"]}
    current = experiments.current()
    if current is None or current.id != state["experiment"]:
        now_running = "none" if current is None else current.id
        reason = (
            f"the canary's experiment {state['experiment']} was stopped by someone else "
            f"(running now: {now_running}); the canary is abandoned, nothing was released"
        )
        return _abort(registry, models, state, [reason], base, stop=False)
    if registry.production() != production:
        reason = (
            f"production moved from {production} to {registry.production()} while the "
            "canary ran: its control arm no longer is production; the canary is abandoned"
        )
        return _abort(registry, models, state, [reason], base, stop=True)
    online = online_report(Path(store), models, state=models / ONLINE)
    report = experiment_report(current, online)
    control = figures_of(online, report, current.id, CONTROL)
    canary = figures_of(online, report, current.id, CANARY)
    conversion = f"conversion@{online['window_minutes']}m"
    comparison = next(
        c for c in report["comparisons"] if c["arm"] == CANARY and c["metric"] == conversion
    )
    verdict = decide(control, canary, comparison, config)
    evidence = {
        **base,
        "rule": verdict.rule,
        "arms": {CONTROL: control.to_json(), CANARY: canary.to_json()},
        "comparison": {k: comparison.get(k) for k in _COMPARED if k in comparison},
        "config": config.model_dump(),
        "log_until": online.get("log_until"),
    }
    if verdict.decision == "promote":
        reason = f"canary {candidate} promoted: " + "; ".join(verdict.reasons)
        registry.promote(candidate, reason, evidence=evidence, decided_by="canary")
        experiments.stop()
        state_path(models).unlink(missing_ok=True)
        return CanaryDecision(
            "promote", verdict.reasons, evidence, current.id, candidate, candidate
        )
    if verdict.decision == "abort":
        return _abort(registry, models, state, verdict.reasons, evidence, stop=True)
    return CanaryDecision("wait", verdict.reasons, evidence, current.id, candidate, production)


_COMPARED = ("verdict", "difference", "interval", "relative", "msprt", "always_valid_p")


def _abort(
    registry: Registry,
    models: Path,
    state: dict[str, Any],
    reasons: list[str],
    evidence: dict[str, Any],
    stop: bool,
) -> CanaryDecision:
    candidate = state["candidate"]
    reason = f"canary {candidate} aborted: " + "; ".join(reasons)
    registry.abort(candidate, reason, evidence=evidence, decided_by="canary")
    if stop:
        Experiments(models).stop()
    state_path(models).unlink(missing_ok=True)
    return CanaryDecision(
        "abort", reasons, evidence, state["experiment"], candidate, registry.production()
    )
