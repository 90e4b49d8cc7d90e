"""The shard function: stable, in range, one shard per id, the fast (numpy) hash equal to
the plain one, and balanced. Agreement with the real nginx is tests/deploy/test_shards.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from movierec.serving.config import ServeConfig
from movierec.serving.shard import (
    MAX_SHARDS,
    Shard,
    bounds,
    murmur_hash2,
    murmur_hash2_ids,
    nginx_split_clients,
    shard_of,
    shards_of,
    shares,
)

user_ids = st.integers(1, 2**31 - 1)
counts = st.integers(1, MAX_SHARDS)


def reference_murmur2(data: bytes) -> int:
    """MurmurHash2 as nginx's C spells it, byte by byte with a fall-through tail."""
    m, h, length = 0x5BD1E995, len(data), len(data)
    at = 0
    while length >= 4:
        k = data[at] | data[at + 1] << 8 | data[at + 2] << 16 | data[at + 3] << 24
        k = k * m % 2**32
        k ^= k >> 24
        k = k * m % 2**32
        h = (h * m % 2**32) ^ k
        at, length = at + 4, length - 4
    if length == 3:
        h ^= data[at + 2] << 16
    if length >= 2:
        h ^= data[at + 1] << 8
    if length >= 1:
        h ^= data[at]
        h = h * m % 2**32
    h ^= h >> 13
    h = h * m % 2**32
    return h ^ (h >> 15)


@given(st.binary(max_size=40))
def test_the_hash_is_murmur2_as_nginx_writes_it(data: bytes) -> None:
    assert murmur_hash2(data) == reference_murmur2(data)


@settings(max_examples=50)
@given(st.lists(user_ids, min_size=1, max_size=200), counts)
def test_the_fast_shard_of_many_is_the_shard_of_each(ids: list[int], count: int) -> None:
    fast = shards_of(np.array(ids), count)
    assert fast.tolist() == [shard_of(u, count) for u in ids]
    assert murmur_hash2_ids(np.array(ids)).tolist() == [murmur_hash2(str(u).encode()) for u in ids]
    assert ((fast >= 0) & (fast < count)).all()
    assert shards_of(np.array(ids), count).tolist() == fast.tolist()  # stable


@given(user_ids, counts)
def test_exactly_one_shard_owns_each_user(user: int, count: int) -> None:
    owners = [i for i in range(count) if Shard(i, count).owns(user)]
    assert owners == [shard_of(user, count)]
    assert Shard(0, 1).owns(user)


def test_ids_no_request_can_name_belong_to_no_shard() -> None:
    assert shards_of(np.array([0, -5, 10**10, 7]), 3).tolist()[:3] == [-1, -1, -1]


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 16), st.integers(1, 2**31 - 60_001))
def test_shards_are_balanced(count: int, start: int) -> None:
    """60,000 consecutive ids: each shard's count within six standard deviations of its
    share (a binomial's), that is within about 3% of it at 16 shards."""
    n = 60_000
    found = np.bincount(shards_of(np.arange(start, start + n), count), minlength=count)
    for held, share in zip(found.tolist(), shares(count), strict=True):
        p = share / 10_000
        assert abs(held - n * p) <= 6 * math.sqrt(n * p * (1 - p)), (found, count)


@given(counts)
def test_shares_add_up_and_bounds_rise(count: int) -> None:
    assert sum(shares(count)) == 10_000
    cuts = bounds(count).tolist()
    assert cuts == sorted(cuts) and len(cuts) == count - 1
    assert all(0 < c < 2**32 for c in cuts)
    block = nginx_split_clients(count, "$id", "$shard", [f"s{i}" for i in range(count)])
    assert block.count("%") == count - 1 and block.count("* s") == 1


@pytest.mark.parametrize("text", ["3/3", "1/0", "-1/2", "a/b", "1", "0/101"])
def test_a_bad_shard_is_refused_with_the_form(text: str) -> None:
    with pytest.raises(ValueError):
        Shard.parse(text)
    with pytest.raises(ValidationError, match="shard"):
        ServeConfig(models_dir="m", shard=text)


def test_the_setting_defaults_to_the_whole_service() -> None:
    assert ServeConfig(models_dir="m").shard == "0/1"
    assert ServeConfig(models_dir="m", shard=" 2 / 4 ").shard == "2/4"
