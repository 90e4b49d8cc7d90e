"""Running the real `movierec` command from tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def movierec(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "movierec.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
