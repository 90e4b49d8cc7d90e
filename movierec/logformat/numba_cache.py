"""Where numba keeps the fast parser's compiled kernels: a directory keyed by their sources.

numba keys a cached function on its own source file only; its documentation says so ("cache
invalidation fails to recognize changes in symbols defined in a different file"). The kernel
in batch_kernel inlines functions from batch_fields and xxhash, so after an edit to one of
those numba would load the old machine code and parse by the old rules, silently.

The remedy uses numba's documented NUMBA_CACHE_DIR setting and nothing else. numba reads the
setting once, when it is imported, so `use_keyed_cache_dir` runs from `movierec/__init__.py`,
before any movierec module imports numba. It points the setting at `<base>/kernels-<key>`,
the key a hash of the names and bytes of KERNEL_SOURCES: after an edit to any of them numba
looks in a directory it has never written, and compiles afresh.

- <base> is the NUMBA_CACHE_DIR the process was started with, so a deployment's choice of place
  holds; otherwise `$MOVIEREC_CACHE/numba` (by default ~/.cache/movierec/numba, beside the
  Kafka jars of scripts/kafka.py). Outside the checkout, it outlives a fresh clone, and every
  checkout with the same sources shares its compiled kernels.
- The setting stays in os.environ, so child processes (the commands tests start, the
  benchmark's probes) use the same directory and find it warm. A child that inherits a keyed
  directory takes its parent as the base, so sources edited meanwhile still get their own.
- Every cached numba function of the process lands there: quality's kernels too, each of which
  lives in one file, where numba's own stamp of that file is enough.

`require_keyed_cache_dir` (xxhash calls it before the first @njit of the kernel's files) makes
sure numba took the directory and can write it; otherwise numba would fall back, quietly, to
its own unkeyed places. It also removes directories of other sources unused for a week.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

SETTING = "NUMBA_CACHE_DIR"
# The files whose functions end up in the fast parser's compiled kernel. A kernel file that
# imports @njit functions from another module must list that module here (a test checks).
KERNEL_SOURCES = ("batch_kernel.py", "batch_fields.py", "xxhash.py")
SOURCES_DIR = Path(__file__).resolve().parent
STALE_AFTER_S = 7 * 86_400  # an unused directory of other sources is removed after this
_KEYED = re.compile(r"kernels-[0-9a-f]{16}")


def sources_key(directory: Path = SOURCES_DIR, names: Sequence[str] = KERNEL_SOURCES) -> str:
    """16 hex digits of sha256 over the names and contents of the kernel's source files."""
    digest = hashlib.sha256()
    for name in names:
        data = (directory / name).read_bytes()
        digest.update(f"{name}\0{len(data)}\0".encode())
        digest.update(data)
    return digest.hexdigest()[:16]


def cache_base(environ: Mapping[str, str] = os.environ) -> Path:
    """The directory that holds one keyed directory per version of the kernel's sources."""
    given = environ.get(SETTING, "").strip()
    if given:
        path = Path(given).absolute()
        return path.parent if _KEYED.fullmatch(path.name) else path
    root = environ.get("MOVIEREC_CACHE", "").strip()
    if not root:
        try:
            root = str(Path.home() / ".cache" / "movierec")
        except RuntimeError as err:  # no HOME and no password entry
            raise RuntimeError(
                f"no home directory for the compiled parser kernels ({err}); "
                f"set MOVIEREC_CACHE or {SETTING}"
            ) from err
    return Path(root).absolute() / "numba"


def keyed_cache_dir(
    base: Path, directory: Path = SOURCES_DIR, names: Sequence[str] = KERNEL_SOURCES
) -> Path:
    """The cache directory of exactly these sources under base."""
    return base / f"kernels-{sources_key(directory, names)}"


def use_keyed_cache_dir() -> Path:
    """Point numba's cache at the directory of the current kernel sources (before numba is
    imported: it reads the setting once)."""
    path = keyed_cache_dir(cache_base())
    os.environ[SETTING] = str(path)
    return path


@cache
def require_keyed_cache_dir() -> Path:
    """The keyed directory numba caches in, after checking numba really does; ImportError
    when it does not, since the kernels could then load stale machine code."""
    import numba

    expected = keyed_cache_dir(cache_base())
    taken = numba.config.CACHE_DIR
    if not taken or Path(taken).absolute() != expected:
        raise ImportError(
            f"numba caches compiled code in {taken or 'its default places'}, not in {expected}, "
            "the directory of the parser kernel's current sources: numba was imported before "
            f"movierec could set {SETTING}, or the sources changed while this process started. "
            f"Import movierec before numba, or start the process with {SETTING}={expected}"
        )
    try:
        expected.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=expected).close()  # the same test numba makes
    except OSError as err:
        raise ImportError(
            f"cannot write the compiled parser kernels' cache {expected} ({err}); set "
            f"MOVIEREC_CACHE or {SETTING} to a writable directory"
        ) from err
    os.utime(expected)  # in use: keeps it from being pruned as stale
    prune_stale(expected)
    return expected


def prune_stale(current: Path) -> None:
    # A week unused, a directory belongs to sources long gone; a process still running on
    # them would have compiled at its start. Best effort: another process may prune too.
    now = time.time()
    for other in current.parent.iterdir():
        if other == current or not _KEYED.fullmatch(other.name):
            continue
        try:
            if now - other.stat().st_mtime > STALE_AFTER_S:
                shutil.rmtree(other, ignore_errors=True)
        except OSError:
            continue
