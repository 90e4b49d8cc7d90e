"""`movierec release`: an operator's hand on the production pointer.

    --rollback          the previous production version, at once (movierec/registry/
                        releases.py defines "previous"); the service follows within its poll
    --promote VERSION   a registered version to production
    --history           the release records, as JSON

Each action prints one JSON line; --rollback and --promote also write a release record
with decided_by "operator". A refusal (no previous version, an unknown version, not exactly
one action) exits 2 with one line saying why and changes nothing.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import ClassVar

import orjson
from pydantic import Field

from movierec.config import Settings, add_options, option
from movierec.registry.releases import NoPreviousError
from movierec.registry.versions import Registry


class ReleaseCommand(Settings):
    component: ClassVar[str] = "release"

    models_dir: Path = Field(description="the model registry", json_schema_extra=option("models"))
    rollback: bool = Field(False, description="put the previous production version back")
    promote: str | None = Field(None, description="put this registered version in production")
    history: bool = Field(False, description="print the release records as JSON")
    reason: str | None = Field(None, description="why (kept in the release record)")


def add_parsers(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("release", help="roll back, promote by hand, or list release records")
    add_options(p, ReleaseCommand)
    p.set_defaults(handler=run_release)


def _refuse(message: str) -> int:
    print(f"movierec release: {message}", file=sys.stderr)
    return 2


def run_release(command: ReleaseCommand) -> int:
    chosen = [command.rollback, command.promote is not None, command.history]
    if sum(chosen) != 1:
        return _refuse("give exactly one of --rollback, --promote VERSION, --history")
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
