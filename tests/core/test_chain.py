"""The hash chain of the append-only ledgers, as pure rules (no database)."""

from __future__ import annotations

import hashlib
from dataclasses import FrozenInstanceError, dataclass
from typing import Any

import pytest

from cdlm.core.chain import GENESIS_HASH, BrokenLink, ChainProblem, check, entry_hash

pytestmark = pytest.mark.pure


@dataclass
class Entry:
    value: str
    prev_hash: str
    hash: str = ""


def content(entry: Entry) -> dict[str, Any]:
    return {"value": entry.value}


def chained(*values: str) -> list[Entry]:
    entries, previous = [], GENESIS_HASH
    for value in values:
        # Each entry holds its own copy of the previous hash, as rows read from a table do.
        entry = Entry(value, "".join(list(previous)))
        entry.hash = entry_hash(content(entry), previous)
        previous = entry.hash
        entries.append(entry)
    return entries


def test_the_genesis_hash_is_64_zeros() -> None:
    assert GENESIS_HASH == "0000000000000000000000000000000000000000000000000000000000000000"


def test_an_entry_hash_is_sha256_of_canonical_json_with_the_previous_hash() -> None:
    expected = hashlib.sha256(b'{"a":1,"b":"x","prev_hash":"p"}').hexdigest()
    assert entry_hash({"b": "x", "a": 1}, "p") == expected
    assert entry_hash({"a": 1, "b": "x"}, "p") == expected  # key order does not matter


def test_the_hash_binds_the_content_and_the_previous_hash() -> None:
    base = entry_hash({"a": 1}, GENESIS_HASH)
    assert entry_hash({"a": 2}, GENESIS_HASH) != base
    assert entry_hash({"a": 1}, "1" * 64) != base
    assert entry_hash({"a": 1}, GENESIS_HASH) == base


def test_an_intact_chain_checks_to_its_last_hash() -> None:
    entries = chained("one", "two", "three")
    assert check(entries, GENESIS_HASH, content) == (entries[-1].hash, None)


def test_an_empty_batch_returns_where_it_started() -> None:
    assert check([], "f" * 64, content) == ("f" * 64, None)


def test_a_batch_continues_from_the_previous_batchs_head() -> None:
    entries = chained("one", "two", "three", "four")
    head, broken = check(entries[:2], GENESIS_HASH, content)
    assert broken is None
    assert check(entries[2:], head, content) == (entries[-1].hash, None)
    # Starting from the wrong head breaks at once.
    assert check(entries[2:], GENESIS_HASH, content) == (
        GENESIS_HASH,
        BrokenLink(0, ChainProblem.PREVIOUS_HASH_MISMATCH),
    )


@pytest.mark.parametrize("position", [0, 1, 2])
def test_altered_content_breaks_where_it_was_altered(position: int) -> None:
    entries = chained("one", "two", "three")
    good = GENESIS_HASH if position == 0 else entries[position - 1].hash
    entries[position].value = "forged"
    assert check(entries, GENESIS_HASH, content) == (
        good,
        BrokenLink(position, ChainProblem.CONTENT_MISMATCH),
    )


@pytest.mark.parametrize("removed", [0, 1])
def test_a_removed_entry_breaks_the_next_link(removed: int) -> None:
    entries = chained("one", "two", "three")
    del entries[removed]
    assert check(entries, GENESIS_HASH, content)[1] == BrokenLink(
        removed, ChainProblem.PREVIOUS_HASH_MISMATCH
    )


def test_a_link_to_any_other_hash_is_broken_whichever_sorts_first() -> None:
    entries = chained("one", "two")
    for start in ("f" * 64, "1" * 64):
        assert check(entries, start, content) == (
            start,
            BrokenLink(0, ChainProblem.PREVIOUS_HASH_MISMATCH),
        )


def test_a_break_is_an_immutable_value() -> None:
    broken = BrokenLink(3, "why")
    with pytest.raises(FrozenInstanceError):
        broken.position = 4  # type: ignore[misc]
