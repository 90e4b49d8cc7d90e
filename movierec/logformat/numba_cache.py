"""Keep numba's on-disk cache of the fast parser's kernels in step with all their sources.

numba keys a cached function on its own source file only. The kernel in batch_kernel
inlines functions from batch_fields and xxhash, so after an edit to one of those
files numba would still load the old compiled kernel, silently parsing by the old rules.
Importing this module (xxhash does, before its first @njit) makes every function
defined in a `movierec/logformat/` kernel file stamped with a hash of all those files
together: editing any of them recompiles every kernel.

The hook is numba's list of cache locator classes (numba.core.caching, pinned numba
version); the locator chosen for the file is kept, only its freshness stamp is extended.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache
from pathlib import Path
from typing import Any

from numba.core.caching import CacheImpl, _CacheLocator

_GROUP_DIR = Path(__file__).resolve().parent
_GROUP = ("batch_kernel.py", "batch_fields.py", "xxhash.py")


def _in_group(py_file: str) -> bool:
    path = Path(py_file).resolve()
    return path.parent == _GROUP_DIR and path.name in _GROUP


def group_stamp() -> str:
    """sha256 over the names and contents of all the kernel's source files."""
    paths = [_GROUP_DIR / name for name in _GROUP]
    return _hash_files(tuple((str(p), p.stat().st_mtime_ns, p.stat().st_size) for p in paths))


@lru_cache(maxsize=8)
def _hash_files(files: tuple[tuple[str, int, int], ...]) -> str:
    # Keyed on (path, mtime, size) so an edit while the process runs is seen.
    digest = hashlib.sha256()
    for name, _, _ in files:
        digest.update(Path(name).name.encode())
        digest.update(Path(name).read_bytes())
    return digest.hexdigest()


class GroupStampLocator(_CacheLocator):
    """numba's own locator for the file, with the whole group's stamp added."""

    def __init__(self, inner: _CacheLocator) -> None:
        self._inner = inner

    def ensure_cache_path(self) -> None:
        self._inner.ensure_cache_path()

    def get_cache_path(self) -> str:
        return self._inner.get_cache_path()

    def get_source_stamp(self) -> Any:
        return (self._inner.get_source_stamp(), group_stamp())

    def get_disambiguator(self) -> str:
        return self._inner.get_disambiguator()

    @classmethod
    def from_function(cls, py_func: Any, py_file: str) -> GroupStampLocator | None:
        if not _in_group(py_file):
            return None
        for other in CacheImpl._locator_classes:
            if other is not cls:
                inner = other.from_function(py_func, py_file)
                if inner is not None:
                    return cls(inner)
        return None


# By name, so that a reloaded module does not register a second locator.
if not any(c.__name__ == GroupStampLocator.__name__ for c in CacheImpl._locator_classes):
    CacheImpl._locator_classes.insert(0, GroupStampLocator)
