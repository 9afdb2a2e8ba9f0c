"""The argon2id hasher: the stand-in hash that unknown accounts are verified against."""

from __future__ import annotations

import threading

import pytest
from argon2 import extract_parameters

from cdlm.auth.passwords import SecretHasher

pytestmark = pytest.mark.pure


def test_the_dummy_hash_has_the_parameters_of_real_hashes_so_verifying_costs_the_same() -> None:
    hasher = SecretHasher(time_cost=2, memory_cost_kib=1024, parallelism=1)
    real = hasher.hash("a real password")
    assert extract_parameters(hasher._dummy_hash) == extract_parameters(real)
    assert not hasher.needs_rehash(hasher._dummy_hash)
    # A full verification that fails, as for a wrong password (a malformed hash would fail fast).
    assert hasher.verify(hasher._dummy_hash, "a real password") is False
    hasher.verify_nothing("anything")


def test_each_hasher_has_its_own_random_dummy_and_starts_no_work() -> None:
    threads = threading.active_count()
    one, other = SecretHasher(1, 512), SecretHasher(1, 512)
    assert one._dummy_hash != other._dummy_hash
    assert threading.active_count() == threads
