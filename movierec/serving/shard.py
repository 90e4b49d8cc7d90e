"""Which shard of the service holds a user: the same function in the service and in nginx.

`movierec serve --shard I/N` keeps only the users of shard I (movierec/serving/sharding.py);
nginx, in front of the N shards, sends each /recommend/<userid> to its shard with
`split_clients` (scripts/replicas.py writes the block from `nginx_split_clients`).

Why split_clients: it is a standard module of every nginx build (Debian's included), it
hashes the id's own text with MurmurHash2 and compares the hash with fixed cut points,
both of which are a few lines of arithmetic mirrored exactly here, and it needs no
lookup table that would grow with the users. `hash ... consistent` (ketama points over
crc32) would need nginx's point table rebuilt in Python, and a regex `map` cannot spread
users evenly over a count that is not a power of ten. The cut points below are nginx's
own (ngx_http_split_clients_module.c): the shares are written in hundredths of a percent,
each part's bound is the running sum of share * 0xffffffff // 10000, and the last shard
is nginx's `*`, everything above the last bound. A test checks the service's shard
against the real nginx's choice for thousands of ids.

The hash is of the id's canonical decimal text (no sign, no leading zero), the only text
the service accepts as a user id (movierec/ids.py: parse_user_id)."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

MAX_SHARDS = 100  # each share is then at least 1% (nginx's shares have two decimals)
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF
_MAX_DIGITS = 10  # user ids are below 2^31


def murmur_hash2(data: bytes) -> int:
    """nginx's ngx_murmur_hash2 (MurmurHash2, seed 0, little-endian blocks)."""
    length = len(data)
    h = length & _MASK
    whole = length - length % 4
    for at in range(0, whole, 4):
        k = int.from_bytes(data[at : at + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    tail = data[whole:]
    if tail:
        for shift, byte in reversed(list(enumerate(tail))):
            h ^= byte << (8 * shift)
        h = (h * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h


def murmur_hash2_ids(user_ids: np.ndarray) -> np.ndarray:
    """murmur_hash2 of each id's decimal text, for many ids at once (uint32)."""
    ids = np.asarray(user_ids, dtype=np.int64).reshape(-1)
    if len(ids) and ids.min() <= 0:
        raise ValueError("user ids are positive integers")
    out = np.empty(len(ids), dtype=np.uint32)
    lengths = np.ones(len(ids), dtype=np.int64)
    for power in range(1, _MAX_DIGITS + 1):
        lengths += ids >= 10**power
    m = np.uint32(_M)
    for length in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == length)
        value = ids[rows]
        # Digit j of the text (j = 0 the first) as its ASCII byte.
        digits = [
            ((value // 10 ** (length - 1 - j)) % 10 + 48).astype(np.uint32) for j in range(length)
        ]
        h = np.full(len(rows), length, dtype=np.uint32)
        whole = length - length % 4
        with np.errstate(over="ignore"):
            for at in range(0, whole, 4):
                k = digits[at] | digits[at + 1] << 8 | digits[at + 2] << 16 | digits[at + 3] << 24
                k = k * m
                k ^= k >> np.uint32(24)
                k = k * m
                h = (h * m) ^ k
            if whole < length:
                for shift in range(length - whole - 1, -1, -1):
                    h ^= digits[whole + shift] << np.uint32(8 * shift)
                h = h * m
            h ^= h >> np.uint32(13)
            h = h * m
            h ^= h >> np.uint32(15)
        out[rows] = h
    return out


def shares(count: int) -> list[int]:
    """Each shard's share in hundredths of a percent, as nginx's block writes them: equal
    ones for shards 0..count-2, the last one taking the rest (nginx's `*`)."""
    _check_count(count)
    equal = 10_000 // count
    return [equal] * (count - 1) + [10_000 - equal * (count - 1)]


def bounds(count: int) -> np.ndarray:
    """The hash below which each shard 0..count-2 starts being the next one (nginx's)."""
    cuts, last = [], 0
    for share in shares(count)[:-1]:
        last += share * _MASK // 10_000
        cuts.append(last)
    return np.array(cuts, dtype=np.uint64)


def shard_of(user_id: int, count: int) -> int:
    """The shard of one user id among `count`."""
    if count == 1:
        return 0
    h = murmur_hash2(str(int(user_id)).encode())
    return int(np.searchsorted(bounds(count), h, side="right"))


def shards_of(user_ids: np.ndarray, count: int) -> np.ndarray:
    """The shard of each user id among `count` (int64); -1 for an id no request can name
    (not positive, or too long), which no shard holds."""
    ids = np.asarray(user_ids, dtype=np.int64).reshape(-1)
    if count == 1:
        _check_count(count)
        return np.zeros(len(ids), dtype=np.int64)
    out = np.full(len(ids), -1, dtype=np.int64)
    valid = (ids > 0) & (ids < 10**_MAX_DIGITS)
    hashes = murmur_hash2_ids(ids[valid]).astype(np.uint64)
    out[valid] = np.searchsorted(bounds(count), hashes, side="right")
    return out


def nginx_split_clients(count: int, key: str, variable: str, names: list[str]) -> str:
    """nginx's split_clients block sending `key` (the id's text) to shard i's `names[i]`."""
    if len(names) != count:
        raise ValueError(f"{count} shards need {count} names, got {len(names)}")
    lines = [f'  split_clients "{key}" {variable} {{']
    for share, name in zip(shares(count)[:-1], names, strict=False):
        lines.append(f"    {share // 100}.{share % 100:02d}% {name};")
    lines.append(f"    * {names[-1]};")
    lines.append("  }")
    return "\n".join(lines)


_SPEC = re.compile(r"^\s*(\d{1,3})\s*/\s*(\d{1,3})\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard `index` of `count` (0/1: the whole, unsharded service)."""

    index: int = 0
    count: int = 1

    def __post_init__(self) -> None:
        _check_count(self.count)
        if not 0 <= self.index < self.count:
            raise ValueError(f"shard {self.index} is not within 0..{self.count - 1}")

    @classmethod
    def parse(cls, text: str) -> Shard:
        """`I/N`: shard I (counted from 0) of N."""
        found = _SPEC.match(text)
        if found is None:
            raise ValueError(f"shard {text!r} is not I/N (shard I of N, I counted from 0)")
        return cls(int(found[1]), int(found[2]))

    @property
    def whole(self) -> bool:
        return self.count == 1

    def owns(self, user_id: int) -> bool:
        return self.whole or shard_of(user_id, self.count) == self.index

    def owned(self, user_ids: np.ndarray) -> np.ndarray:
        """A mask of the ids this shard holds."""
        ids = np.asarray(user_ids, dtype=np.int64).reshape(-1)
        if self.whole:
            return np.ones(len(ids), dtype=bool)
        return shards_of(ids, self.count) == self.index

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"


def _check_count(count: int) -> None:
    if not 1 <= count <= MAX_SHARDS:
        raise ValueError(f"a shard count is 1..{MAX_SHARDS}, not {count}")
