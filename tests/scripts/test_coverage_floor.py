"""The coverage floor: scripts/coverage_floor.py fails a run below it and raises it after a
run above it, and the committed floor (.ci/coverage-floor) never went down in git history."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import shutil
import subprocess
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOOR = ".ci/coverage-floor"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "coverage_floor", ROOT / "scripts/coverage_floor.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


floor_script = load_script()


def floor_file(tmp_path: Path, value: str) -> Path:
    path = tmp_path / "coverage-floor"
    path.write_text(f"{value}\n")
    return path


@pytest.mark.parametrize(
    ("total", "status", "floor_after"),
    [
        (88.29, 1, "88.3"),  # below: fails, the floor stays
        (88.3, 0, "88.3"),
        (88.39, 0, "88.3"),  # less than 0.1 above: unchanged
        (88.4, 0, "88.4"),  # 0.1 above: rises
        (91.07, 0, "91.0"),  # rounded down to 0.1
    ],
)
def test_a_total_below_fails_and_one_above_raises_the_floor(
    tmp_path: Path, total: float, status: int, floor_after: str
) -> None:
    path = floor_file(tmp_path, "88.3")
    got, message = floor_script.check(total, path)
    assert got == status
    assert path.read_text() == f"{floor_after}\n"
    assert ("below the floor" in message) == (status == 1)
    assert ("rises" in message) == (floor_after != "88.3")


def test_the_command_reads_coverage_json(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    report = tmp_path / "coverage.json"
    report.write_text(json.dumps({"totals": {"percent_covered": 87.0}}))
    path = floor_file(tmp_path, "88.3")
    assert floor_script.main(["--report", str(report), "--floor", str(path)]) == 1
    assert "87.00% is below the floor of 88.3%" in capsys.readouterr().err
    assert floor_script.main(["--report", str(tmp_path / "none.json"), "--floor", str(path)]) == 1


def git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=60
    )


def test_the_committed_floor_never_went_down() -> None:
    # A checkout without git, or one git refuses to read, skips here but fails in CI.
    outside_ci = not os.environ.get("CI")
    if shutil.which("git") is None or git("rev-parse", "--git-dir").returncode != 0:
        if outside_ci:
            pytest.skip("not a git checkout: the floor's history cannot be read")
        pytest.fail("CI needs the floor's git history (a git checkout)", pytrace=False)
    assert (ROOT / FLOOR).is_file(), f"{FLOOR} is missing"
    log = git("log", "--format=%H", "--", FLOOR)
    assert log.returncode == 0, log.stderr
    commits = log.stdout.split()[::-1]  # oldest first
    if not commits:
        pytest.skip(f"{FLOOR} is not committed yet")
    history: list[tuple[str, float]] = []
    for commit in commits:
        shown = git("show", f"{commit}:{FLOOR}")
        assert shown.returncode == 0, f"{FLOOR} was deleted in {commit[:12]}"
        history.append((commit[:12], float(shown.stdout)))
    history.append(("working tree", floor_script.read_floor(ROOT / FLOOR)))
    lowered = [f"{a} {x} -> {b} {y}" for (a, x), (b, y) in itertools.pairwise(history) if y < x]
    assert lowered == [], f"the coverage floor went down: {lowered}"
