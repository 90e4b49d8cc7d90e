"""Checking a file against a published schema bundled with check-jsonschema (offline)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def assert_valid(path: Path, builtin_schema: str) -> None:
    """`check-jsonschema --builtin-schema NAME PATH` passes (e.g. vendor.compose-spec)."""
    check = Path(sys.executable).parent / "check-jsonschema"
    done = subprocess.run(
        [str(check), "--builtin-schema", builtin_schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
