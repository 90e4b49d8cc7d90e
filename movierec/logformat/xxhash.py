"""XXH64 (seed 0) of a byte span: the line hash of the fast parser, in numba and in Python.

XXH64 is a published, frozen algorithm (https://github.com/Cyan4973/xxHash, doc/xxhash_spec.md)
with independent implementations in most languages, so a stored hash can always be recomputed
and checked by other tools. The numba kernel reads the line 8 bytes at a time with four
independent accumulators, which keeps hashing every line a small part of parsing it.

All arithmetic is modulo 2**64. In numba every operand is kept uint64 explicitly: mixing
uint64 with a signed integer would silently promote to float64.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from movierec.logformat.numba_cache import require_keyed_cache_dir

# Before the first @njit of the kernel's files: numba must cache them by all their sources.
require_keyed_cache_dir()

_MASK = (1 << 64) - 1
_P1 = 0x9E3779B185EBCA87
_P2 = 0xC2B2AE3D27D4EB4F
_P3 = 0x165667B19E3779F9
_P4 = 0x85EBCA77C2B2AE63
_P5 = 0x27D4EB2F165667C5

P1 = np.uint64(_P1)
P2 = np.uint64(_P2)
P3 = np.uint64(_P3)
P4 = np.uint64(_P4)
P5 = np.uint64(_P5)
ZERO = np.uint64(0)


@njit(cache=True, nogil=True, inline="always")
def at(buf: np.ndarray, j: int) -> int:
    """buf[j] for 0 <= j < buf.size. The unsigned index skips numba's negative-index
    wraparound, which otherwise costs a branch per byte and stops LLVM from merging
    neighbouring byte loads (four times slower here)."""
    return buf[np.uint64(j)]


@njit(cache=True, nogil=True, inline="always")
def _rotl(x: np.uint64, r: int) -> np.uint64:
    return (x << np.uint64(r)) | (x >> np.uint64(64 - r))


@njit(cache=True, nogil=True, inline="always")
def read64(buf: np.ndarray, p: int) -> np.uint64:
    # Byte by byte, little-endian: lines start at any offset, so no aligned view exists;
    # LLVM folds this into one unaligned load.
    return (
        np.uint64(at(buf, p))
        | (np.uint64(at(buf, p + 1)) << np.uint64(8))
        | (np.uint64(at(buf, p + 2)) << np.uint64(16))
        | (np.uint64(at(buf, p + 3)) << np.uint64(24))
        | (np.uint64(at(buf, p + 4)) << np.uint64(32))
        | (np.uint64(at(buf, p + 5)) << np.uint64(40))
        | (np.uint64(at(buf, p + 6)) << np.uint64(48))
        | (np.uint64(at(buf, p + 7)) << np.uint64(56))
    )


@njit(cache=True, nogil=True, inline="always")
def _round(acc: np.uint64, lane: np.uint64) -> np.uint64:
    acc = acc + lane * P2
    return _rotl(acc, 31) * P1


@njit(cache=True, nogil=True, inline="always")
def _merge(acc: np.uint64, val: np.uint64) -> np.uint64:
    acc = acc ^ _round(ZERO, val)
    return acc * P1 + P4


@njit(cache=True, nogil=True)
def xxh64_span(buf: np.ndarray, start: int, end: int) -> np.uint64:
    """XXH64 with seed 0 of buf[start:end]."""
    p = start
    if end - start >= 32:
        v1 = P1 + P2
        v2 = P2
        v3 = ZERO
        v4 = ZERO - P1
        while p + 32 <= end:
            v1 = _round(v1, read64(buf, p))
            v2 = _round(v2, read64(buf, p + 8))
            v3 = _round(v3, read64(buf, p + 16))
            v4 = _round(v4, read64(buf, p + 24))
            p += 32
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = _merge(h, v1)
        h = _merge(h, v2)
        h = _merge(h, v3)
        h = _merge(h, v4)
    else:
        h = P5
    h = h + np.uint64(end - start)
    while p + 8 <= end:
        h = h ^ _round(ZERO, read64(buf, p))
        h = _rotl(h, 27) * P1 + P4
        p += 8
    if p + 4 <= end:
        word = (
            np.uint64(at(buf, p))
            | (np.uint64(at(buf, p + 1)) << np.uint64(8))
            | (np.uint64(at(buf, p + 2)) << np.uint64(16))
            | (np.uint64(at(buf, p + 3)) << np.uint64(24))
        )
        h = h ^ (word * P1)
        h = _rotl(h, 23) * P2 + P3
        p += 4
    while p < end:
        h = h ^ (np.uint64(at(buf, p)) * P5)
        h = _rotl(h, 11) * P1
        p += 1
    h = h ^ (h >> np.uint64(33))
    h = h * P2
    h = h ^ (h >> np.uint64(29))
    h = h * P3
    return h ^ (h >> np.uint64(32))


def _rotl_py(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & _MASK


def _round_py(acc: int, lane: int) -> int:
    return (_rotl_py((acc + lane * _P2) & _MASK, 31) * _P1) & _MASK


def _merge_py(acc: int, val: int) -> int:
    return ((acc ^ _round_py(0, val)) * _P1 + _P4) & _MASK


def xxh64(raw: bytes) -> int:
    """XXH64 with seed 0, in plain Python: the reference the numba kernel is tested against."""
    n = len(raw)
    p = 0
    if n >= 32:
        v = [(_P1 + _P2) & _MASK, _P2, 0, (-_P1) & _MASK]
        while p + 32 <= n:
            for lane in range(4):
                word = int.from_bytes(raw[p + 8 * lane : p + 8 * lane + 8], "little")
                v[lane] = _round_py(v[lane], word)
            p += 32
        h = _rotl_py(v[0], 1) + _rotl_py(v[1], 7) + _rotl_py(v[2], 12) + _rotl_py(v[3], 18)
        h &= _MASK
        for lane in range(4):
            h = _merge_py(h, v[lane])
    else:
        h = _P5
    h = (h + n) & _MASK
    while p + 8 <= n:
        h ^= _round_py(0, int.from_bytes(raw[p : p + 8], "little"))
        h = (_rotl_py(h, 27) * _P1 + _P4) & _MASK
        p += 8
    if p + 4 <= n:
        h ^= (int.from_bytes(raw[p : p + 4], "little") * _P1) & _MASK
        h = (_rotl_py(h, 23) * _P2 + _P3) & _MASK
        p += 4
    while p < n:
        h ^= (raw[p] * _P5) & _MASK
        h = (_rotl_py(h, 11) * _P1) & _MASK
        p += 1
    h ^= h >> 33
    h = (h * _P2) & _MASK
    h ^= h >> 29
    h = (h * _P3) & _MASK
    return h ^ (h >> 32)
