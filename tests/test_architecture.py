"""The architecture contract of docs/architecture.md: import-linter's contracts in
pyproject.toml hold on the code, and they would catch a new upward import, a new cycle
inside a package, or the core reaching into the simulator."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("movierec", "movierec_sim")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
MAX_MODULE_LINES = 400


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def copy_of_the_code(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_contracts_hold_on_the_code(tmp_path: Path) -> None:
    result = lint_imports(copy_of_the_code(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "BROKEN" not in result.stdout
    assert result.stdout.count("KEPT") == 4


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # a model reaching up into the service: an upward import across layers
        ("movierec/models/base.py", "import movierec.serving.app", "Layers of the product"),
        # a cycle between two modules of one package
        ("movierec/http/messages.py", "import movierec.http.server", "No import cycles"),
        # training and serving are independent roles
        ("movierec/training/search.py", "import movierec.serving.snapshot", "Layers of the"),
        # the product's core must not depend on the simulated world
        ("movierec/store/events.py", "import movierec_sim.world", "never imports the simulator"),
        # the simulator must not use the product's internals to make its data
        ("movierec_sim/engine.py", "import movierec.models.base", "only movierec's foundations"),
    ],
)
def test_a_forbidden_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    tree = copy_of_the_code(tmp_path)
    with (tree / module).open("a") as source:
        source.write(f"\n{line}  # noqa: E402\n")
    result = lint_imports(tree)
    assert result.returncode != 0
    contract_lines = [row for row in result.stdout.splitlines() if broken in row]
    assert any(row.endswith("BROKEN") for row in contract_lines), result.stdout


def test_no_module_is_longer_than_the_house_allows() -> None:
    too_long = {
        str(path.relative_to(ROOT)): n
        for name in PACKAGES
        for path in (ROOT / name).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert too_long == {}
