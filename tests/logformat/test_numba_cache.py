"""The parser kernels' numba cache is keyed by all of their sources: an edit to any source
file, not only the kernel's own, means a fresh compile."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from movierec.logformat import batch_fields, batch_kernel, xxhash
from movierec.logformat import numba_cache as nc

# A kernel in one file inlining a helper from another, as batch_kernel does with batch_fields.
HELPER = """
from numba import njit


@njit(cache=True, inline="always")
def answer():
    return {value}
"""
KERNEL = """
from numba import njit

from helper import answer


@njit(cache=True)
def kernel():
    return answer()
"""
# Compiles (or loads) the toy kernel with the cache where the test says, and reports.
DRIVER = """
import json, os, sys
from pathlib import Path

from movierec.logformat.numba_cache import keyed_cache_dir

toy, base, keyed = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3] == "keyed"
cache = keyed_cache_dir(base, toy, ("kernel.py", "helper.py")) if keyed else base
os.environ["NUMBA_CACHE_DIR"] = str(cache)  # before numba is imported, as movierec does
sys.path.insert(0, str(toy))
import kernel

value = kernel.kernel()
stats = kernel.kernel.stats
hits, misses = sum(stats.cache_hits.values()), sum(stats.cache_misses.values())
print(json.dumps({"value": value, "hits": hits, "misses": misses}))
"""


def toy_kernel(tmp_path: Path) -> tuple[Path, Path]:
    toy = tmp_path / "toy"
    toy.mkdir()
    (toy / "helper.py").write_text(HELPER.format(value=1))
    (toy / "kernel.py").write_text(KERNEL)
    (tmp_path / "driver.py").write_text(DRIVER)
    return toy, tmp_path / "cache"


def run_toy(tmp_path: Path, toy: Path, base: Path, mode: str) -> dict[str, int]:
    done = subprocess.run(
        [sys.executable, str(tmp_path / "driver.py"), str(toy), str(base), mode],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def edit_helper(toy: Path, value: int) -> None:
    helper = toy / "helper.py"
    before = helper.stat().st_mtime_ns
    helper.write_text(HELPER.format(value=value))
    # Same size as before: only the bytes (and the mtime, made to move) tell the edit apart.
    os.utime(helper, ns=(before + 10**9, before + 10**9))


def test_an_edited_helper_file_means_a_fresh_compile(tmp_path: Path) -> None:
    toy, base = toy_kernel(tmp_path)
    assert run_toy(tmp_path, toy, base, "keyed") == {"value": 1, "hits": 0, "misses": 1}
    assert run_toy(tmp_path, toy, base, "keyed") == {"value": 1, "hits": 1, "misses": 0}
    edit_helper(toy, 2)
    assert run_toy(tmp_path, toy, base, "keyed") == {"value": 2, "hits": 0, "misses": 1}
    edit_helper(toy, 1)  # back to the first sources: their compiled kernel is still there
    assert run_toy(tmp_path, toy, base, "keyed") == {"value": 1, "hits": 1, "misses": 0}


def test_numba_alone_would_load_the_stale_kernel(tmp_path: Path) -> None:
    # Why the key exists. Should numba ever track other files itself, this fails, and the
    # keyed directory may go.
    toy, base = toy_kernel(tmp_path)
    assert run_toy(tmp_path, toy, base, "plain") == {"value": 1, "hits": 0, "misses": 1}
    edit_helper(toy, 2)
    assert run_toy(tmp_path, toy, base, "plain") == {"value": 1, "hits": 1, "misses": 0}


def test_the_parser_kernels_are_cached_under_their_sources_key() -> None:
    import numba  # here: a test module importing it first would be refused (see below)

    keyed = nc.keyed_cache_dir(nc.cache_base())
    assert keyed.name == f"kernels-{nc.sources_key()}"
    assert Path(numba.config.CACHE_DIR) == keyed == nc.require_keyed_cache_dir()
    assert os.environ[nc.SETTING] == str(keyed)  # what child processes inherit
    kernels = [batch_kernel.parse_chunk, batch_kernel.rehash, batch_fields.scan_line]
    for dispatcher in [*kernels, xxhash.xxh64_span]:
        assert Path(dispatcher.stats.cache_path).parent == keyed, dispatcher


def test_the_key_changes_with_every_kernel_source(tmp_path: Path) -> None:
    for name in nc.KERNEL_SOURCES:
        shutil.copy(nc.SOURCES_DIR / name, tmp_path / name)
    original = nc.sources_key(tmp_path)
    assert original == nc.sources_key()
    for name in nc.KERNEL_SOURCES:
        path = tmp_path / name
        text = path.read_text()
        path.write_text(text + "# an edit\n")
        assert nc.sources_key(tmp_path) != original, name
        path.write_text(text)
        assert nc.sources_key(tmp_path) == original


COMPILED = re.compile(r"^@(numba\.)?n?jit\b", re.MULTILINE)  # a module defining kernels


def movierec_imports(path: Path) -> set[Path]:
    """Source files of the movierec modules path imports (`from package import module` too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    root = nc.SOURCES_DIR.parent.parent
    files = set()
    for name in names:
        if name.split(".")[0] == "movierec":
            module = root / Path(*name.split("."))
            files.update(
                f for f in (module.with_suffix(".py"), module / "__init__.py") if f.exists()
            )
    return files


def test_kernel_sources_name_every_module_they_take_compiled_code_from() -> None:
    for name in nc.KERNEL_SOURCES:
        imported = movierec_imports(nc.SOURCES_DIR / name)
        assert imported, name  # the walk finds imports at all
        for source in imported:
            if COMPILED.search(source.read_text()):
                assert source.parent == nc.SOURCES_DIR, (name, source)
                assert source.name in nc.KERNEL_SOURCES, (name, source)


@pytest.mark.parametrize(
    ("environ", "base"),
    [
        ({"NUMBA_CACHE_DIR": "/srv/cache"}, "/srv/cache"),
        # Inherited from a parent process: keyed again from the same base.
        ({"NUMBA_CACHE_DIR": "/srv/cache/kernels-0123456789abcdef"}, "/srv/cache"),
        ({"NUMBA_CACHE_DIR": "/srv/cache/kernels-x"}, "/srv/cache/kernels-x"),
        ({"MOVIEREC_CACHE": "/var/mr"}, "/var/mr/numba"),
        ({"NUMBA_CACHE_DIR": " ", "MOVIEREC_CACHE": "/var/mr"}, "/var/mr/numba"),
    ],
)
def test_cache_base(environ: dict[str, str], base: str) -> None:
    assert nc.cache_base(environ) == Path(base)


def test_cache_base_defaults_to_the_user_cache() -> None:
    assert nc.cache_base({}) == Path.home() / ".cache" / "movierec" / "numba"


def test_unused_directories_of_other_sources_are_pruned(tmp_path: Path) -> None:
    current = tmp_path / "kernels-0000000000000000"
    stale, recent = tmp_path / "kernels-1111111111111111", tmp_path / "kernels-2222222222222222"
    foreign = tmp_path / "kernels-old-but-not-ours"
    for path in (current, stale, recent, foreign):
        (path / "logformat_x").mkdir(parents=True)
    week_ago = time.time() - nc.STALE_AFTER_S - 60
    for path in (current, stale, foreign):
        os.utime(path, (week_ago, week_ago))
    nc.prune_stale(current)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (current, recent, foreign)
    )


def test_numba_imported_first_is_refused() -> None:
    # Without the directory this process chose: numba then reads no setting at all.
    env = {k: v for k, v in os.environ.items() if k != nc.SETTING}
    done = subprocess.run(
        [sys.executable, "-c", "import numba\nimport movierec.logformat.batch"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        env=env,
    )
    assert done.returncode != 0
    assert "numba was imported before movierec could set NUMBA_CACHE_DIR" in done.stderr
