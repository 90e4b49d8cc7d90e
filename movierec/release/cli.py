"""`movierec release`: an operator's hand on the production pointer.

    --rollback          the previous production version, at once (movierec/registry/
                        releases.py defines "previous"); the service follows within its poll
    --promote VERSION   a registered version to production
    --history           the release records, as JSON
    --canary VERSION    start a canary release of a registered version beside production
                        (--share of users; movierec/release/canary.py)

`movierec canary` makes one decision step of the running canary (wait, promote, abort).

Each action prints one JSON line; --rollback, --promote and --canary also write a release
record with decided_by "operator". A refusal (no previous version, an unknown version, a
canary or experiment already running, not exactly one action) exits 2 with one line saying
why and changes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import ClassVar

import orjson
from pydantic import Field

from movierec.config import Settings, add_options, group, option
from movierec.registry.releases import NoPreviousError
from movierec.registry.versions import Registry
from movierec.release.canary import running, start_canary, step
from movierec.release.canary_rules import CanaryConfig


class ReleaseCommand(Settings):
    component: ClassVar[str] = "release"

    models_dir: Path = Field(description="the model registry", json_schema_extra=option("models"))
    rollback: bool = Field(False, description="put the previous production version back")
    promote: str | None = Field(None, description="put this registered version in production")
    history: bool = Field(False, description="print the release records as JSON")
    canary: str | None = Field(
        None, description="start a canary release of this registered version"
    )
    share: float = Field(0.2, gt=0, lt=1, description="the canary's share of users (with --canary)")
    reason: str | None = Field(None, description="why (kept in the release record)")


class CanaryCommand(Settings):
    component: ClassVar[str] = "canary"

    models_dir: Path = Field(description="the model registry", json_schema_extra=option("models"))
    store: Path = Field(description="the event store (the site's log, ingested)")
    rules: CanaryConfig = Field(
        default_factory=CanaryConfig,
        description="what decides the canary (a setting given here overrides the one the "
        "canary was started with)",
        json_schema_extra=group(),
    )


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "release", help="roll back, promote by hand, start a canary, or list release records"
    )
    add_options(p, ReleaseCommand)
    p.set_defaults(handler=run_release)
    c = sub.add_parser("canary", help="one decision step of the running canary release")
    add_options(c, CanaryCommand)
    c.set_defaults(handler=run_canary)


def _refuse(message: str) -> int:
    print(f"movierec release: {message}", file=sys.stderr)
    return 2


def run_release(command: ReleaseCommand) -> int:
    chosen = [
        command.rollback,
        command.promote is not None,
        command.history,
        command.canary is not None,
    ]
    if sum(chosen) != 1:
        return _refuse(
            "give exactly one of --rollback, --promote VERSION, --history, --canary VERSION"
        )
    if not (command.models_dir / "registry.json").is_file():
        return _refuse(f"no registry at {command.models_dir} (no registry.json)")
    registry = Registry(command.models_dir)
    if command.history:
        records = [record.to_json() for record in registry.releases()]
        print(orjson.dumps({"production": registry.production(), "records": records}).decode())
        return 0
    if command.rollback:
        try:
            record = registry.rollback(command.reason or "operator rollback")
        except NoPreviousError as error:
            return _refuse(str(error))
        print(orjson.dumps({"action": "rollback", **record.to_json()}).decode())
        return 0
    if command.canary is not None:
        return _start(registry, command)
    version = command.promote
    assert version is not None
    known = {entry["version"] for entry in registry.read()["versions"]}
    if version not in known or not registry.loads(version):
        return _refuse(f"unknown version {version!r}: not a loadable version of this registry")
    before = registry.production()
    registry.promote(
        version,
        command.reason or "operator promotion",
        evidence={"previous": before},
        decided_by="operator",
    )
    print(orjson.dumps({"action": "promote", **registry.releases()[-1].to_json()}).decode())
    return 0


def _start(registry: Registry, command: ReleaseCommand) -> int:
    assert command.canary is not None
    try:
        experiment = start_canary(
            registry.root,
            command.canary,
            CanaryConfig(share=command.share),
            evidence={"reason": command.reason} if command.reason else {},
            decided_by="operator",
        )
    except ValueError as error:
        return _refuse(str(error))
    record = registry.releases()[-1].to_json()
    print(
        orjson.dumps({"action": "canary", "arms": experiment.to_json()["arms"], **record}).decode()
    )
    return 0


def run_canary(command: CanaryCommand) -> int:
    def refuse(message: str) -> int:
        print(f"movierec canary: {message}", file=sys.stderr)
        return 2

    if not (command.models_dir / "registry.json").is_file():
        return refuse(f"no registry at {command.models_dir} (no registry.json)")
    if not command.store.is_dir():
        return refuse(f"no event store at {command.store}")
    state = running(command.models_dir)
    config = None
    if state is not None:
        # The settings the canary started with, under any given here (flag, variable, file).
        given = command.rules.model_fields_set if "rules" in command.model_fields_set else set()
        config = CanaryConfig(
            **{**state["config"], **{k: getattr(command.rules, k) for k in given}}
        )
    try:
        decision = step(command.store, command.models_dir, config)
    except ValueError as error:
        return refuse(str(error))
    print(orjson.dumps(decision.to_json()).decode())
    return 0
