"""Running the real `movierec` command from tests."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def movierec(
    *args: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess:
    """The command's outcome; `env` adds variables to (or overrides) the test's environment."""
    return subprocess.run(
        [sys.executable, "-m", "movierec.cli", *args],
        cwd=cwd,
        env={**os.environ, **env} if env is not None else None,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
