"""scripts/model_report.py's fingerprint of the pipeline code and its "current" short-circuit,
on a tiny fake tree (the real run is CI's: scripts/test.sh makes the report after the tests)."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("model_report", ROOT / "scripts/model_report.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


report = load_script()


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    files = {
        "movierec/models/als.py": "FACTORS = 64\n",
        "movierec/models/ease.py": "L2 = 500.0\n",
        "movierec_sim/world.py": "USERS = 2000\n",
        "constraints.txt": "numpy==2.1.0\n",
        "movierec/serving/app.py": "PORT = 8082\n",  # not pipeline code
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_an_unchanged_tree_has_the_same_fingerprint_wherever_it_lies(tree: Path) -> None:
    first = report.fingerprint(tree)
    assert report.fingerprint(tree) == first
    assert len(first) == 64
    copy = shutil.copytree(tree, tree.parent / "elsewhere")
    assert report.fingerprint(copy) == first


@pytest.mark.parametrize(
    "change",
    [
        lambda root: (root / "movierec/models/als.py").write_text("FACTORS = 128\n"),
        lambda root: (root / "movierec/models/bpr.py").write_text("EPOCHS = 5\n"),
        lambda root: (root / "movierec/models/ease.py").unlink(),
        lambda root: (root / "movierec/models/ease.py").rename(root / "movierec/models/e.py"),
        lambda root: (root / "movierec_sim/world.py").write_text("USERS = 2001\n"),
        lambda root: (root / "constraints.txt").write_text("numpy==2.2.0\n"),
        lambda root: shutil.rmtree(root / "movierec_sim"),
    ],
    ids=["edited", "added", "deleted", "renamed", "simulator", "pins", "package gone"],
)
def test_a_changed_pipeline_file_changes_the_fingerprint(tree: Path, change) -> None:
    before = report.fingerprint(tree)
    change(tree)
    assert report.fingerprint(tree) != before


def test_caches_and_code_outside_the_pipeline_leave_it_alone(tree: Path) -> None:
    before = report.fingerprint(tree)
    cache = tree / "movierec/models/__pycache__"
    cache.mkdir()
    (cache / "als.cpython-311.pyc").write_bytes(b"\x00compiled")
    (tree / "movierec/models/.als.py.swp").write_bytes(b"editor")
    (tree / "movierec/serving/app.py").write_text("PORT = 9000\n")
    (tree / "README.md").write_text("words\n")
    assert report.fingerprint(tree) == before


def write_report(out: Path, fingerprint: str) -> None:
    out.mkdir(parents=True)
    (out / "offline.json").write_text("{}")
    (out / "offline.html").write_text("<html></html>")
    (out / "summary.json").write_text(json.dumps({"fingerprint": fingerprint, "commit": "abc"}))


def test_a_report_of_this_fingerprint_is_current_and_nothing_runs(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "reports/model"
    write_report(out, report.fingerprint(tree))
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def must_not_run(*_: object) -> dict:
        raise AssertionError("a current report was made again")

    monkeypatch.setattr(report, "build", must_not_run)
    assert report.main(["--root", str(tree), "--out", str(out)]) == 0
    assert "model report: current" in capsys.readouterr().out
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_another_fingerprint_or_a_missing_page_is_not_current(tree: Path, tmp_path: Path) -> None:
    fingerprint = report.fingerprint(tree)
    out = tmp_path / "reports/model"
    write_report(out, fingerprint)
    assert report.current_summary(out, fingerprint) is not None
    (tree / "movierec/models/als.py").write_text("FACTORS = 32\n")
    assert report.current_summary(out, report.fingerprint(tree)) is None
    (out / "offline.html").unlink()
    assert report.current_summary(out, fingerprint) is None
    (out / "summary.json").write_text("not json")
    assert report.current_summary(out, fingerprint) is None
    assert report.current_summary(tmp_path / "nowhere", fingerprint) is None


def test_every_path_the_fingerprint_names_exists() -> None:
    assert [p for p in report.PIPELINE if not (ROOT / p).exists()] == []
    names = [name for name, _ in report.pipeline_files(ROOT)]
    assert "movierec/models/als.py" in names
    assert "movierec_sim/world.py" in names
    assert not any("__pycache__" in name or name.endswith(".pyc") for name in names)
