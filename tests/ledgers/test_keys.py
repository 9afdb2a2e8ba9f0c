"""The ledger key: how it is given, checked and rotated, and what keyed chains detect (pure
rules, no database)."""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from cdlm.config import ConfigError, load_settings, parse_ledger_keys
from cdlm.core.chain import GENESIS_HASH, BrokenLink, ChainProblem, Keyring, Walk, check, entry_hash
from cdlm.ledgers.keys import LEDGER_KEY_FILE, keyring_from

pytestmark = pytest.mark.pure

OLD = "o" * 40
NEW = "n" * 40


@dataclass
class Entry:
    value: str
    prev_hash: str
    key_id: str | None
    hash: str = ""


def content(entry: Entry) -> dict[str, Any]:
    return {"value": entry.value}


def chained(
    keys: Keyring, values: list[tuple[str, str | None]], start: str = GENESIS_HASH
) -> list[Entry]:
    """Entries of ``(value, key id)``: key id None is a legacy (SHA-256) entry."""
    entries, previous = [], start
    for value, key_id in values:
        entry = Entry(value, previous, key_id)
        entry.hash = keys.hash_of(content(entry), previous, key_id)
        previous = entry.hash
        entries.append(entry)
    return entries


KEYS = parse_ledger_keys(f"k2:{NEW},k1:{OLD}")


def test_a_keyed_hash_is_hmac_sha256_of_content_previous_hash_and_key_id() -> None:
    message = json.dumps(
        {"value": "a", "prev_hash": GENESIS_HASH, "key_id": "k1"},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    expected = hmac.new(OLD.encode(), message, hashlib.sha256).hexdigest()
    assert KEYS.keyed_hash({"value": "a"}, GENESIS_HASH, "k1") == expected
    assert KEYS.keyed_hash({"value": "a"}, GENESIS_HASH, "k2") != expected
    assert KEYS.sign({"value": "a"}, GENESIS_HASH)[0] == "k2"  # the first key is current


def test_legacy_entries_are_accepted_as_a_prefix_and_keys_rotate_without_rehashing() -> None:
    entries = chained(KEYS, [("a", None), ("b", None), ("c", "k1"), ("d", "k2")])
    assert check(entries, GENESIS_HASH, content, KEYS) == (entries[-1].hash, None)


def test_an_unkeyed_entry_after_a_keyed_one_is_a_break_even_across_batches() -> None:
    # The forger appends a plain SHA-256 entry: they can compute it, not a keyed one.
    entries = chained(KEYS, [("a", None), ("b", "k2"), ("c", None)])
    assert check(entries, GENESIS_HASH, content, KEYS)[1] == BrokenLink(
        2, ChainProblem.UNKEYED_AFTER_KEYED
    )
    walk = Walk()
    assert check(entries[:2], walk, content, KEYS)[1] is None
    assert check(entries[2:], walk, content, KEYS)[1] == BrokenLink(
        0, ChainProblem.UNKEYED_AFTER_KEYED
    )
    # A plain hash where the previous batch did not reach a keyed entry is still a prefix.
    assert check(entries[2:], entries[1].hash, content, KEYS)[1] is None


def test_a_chain_recomputed_under_another_key_does_not_verify() -> None:
    forged = chained(parse_ledger_keys(f"k2:{'f' * 40}"), [("a", "k2"), ("b", "k2")])
    assert check(forged, GENESIS_HASH, content, KEYS)[1] == BrokenLink(
        0, ChainProblem.CONTENT_MISMATCH
    )


def test_an_entry_under_a_key_no_longer_held_cannot_be_checked() -> None:
    entries = chained(KEYS, [("a", "k1"), ("b", "k2")])
    current_only = parse_ledger_keys(f"k2:{NEW}")
    assert check(entries, GENESIS_HASH, content, current_only)[1] == BrokenLink(
        0, ChainProblem.UNKNOWN_KEY
    )


def test_a_legacy_hash_is_the_sha256_it_always_was() -> None:
    entries = chained(KEYS, [("a", None)])
    assert entries[0].hash == entry_hash({"value": "a"}, GENESIS_HASH)


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("short", "at least 32 characters"),
        (f"k1:{OLD},{NEW}", "give each key an id"),
        (f"K1:{OLD}", "key ids are lower case"),
        (f"k1:{OLD},k1:{NEW}", "k1 is given twice"),
        (f"k1:{OLD},k2:short", "at least 32 characters"),
        (" , ", "must hold a secret"),
    ],
)
def test_a_malformed_ledger_key_is_one_line_that_never_repeats_it(raw: str, problem: str) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings({"CDLM_LEDGER_KEY": raw, "CDLM_DATA_DIR": "/nonexistent"})
    message = str(refused.value)
    assert message.startswith("CDLM_LEDGER_KEY: ")
    assert problem in message
    assert "\n" not in message
    assert not [secret for secret in (OLD, NEW, "short") if secret in message]


def test_production_requires_a_ledger_key() -> None:
    env = {
        "CDLM_ENV": "production",
        "DATABASE_URL": "postgresql://cdlm@db/cdlm",
        "CDLM_TOKEN_SECRET": "t" * 40,
        "CDLM_NOTIFY_FROM": "privacy@example.com",
    }
    with pytest.raises(
        ConfigError,
        match=r"^CDLM_LEDGER_KEY: is required when CDLM_ENV=production \(or CDLM_LEDGER_KEY_ARN\)$",
    ):
        load_settings(env)
    keys = load_settings({**env, "CDLM_LEDGER_KEY": f"k9:{NEW}"}).ledger_keys
    assert keys is not None
    assert keys.current == "k9"


def test_a_bare_secret_gets_an_id_derived_from_it_that_does_not_reveal_it() -> None:
    keys = parse_ledger_keys(NEW)
    assert (
        keys.current
        == "k" + hashlib.sha256(b"cdlm-ledger-key-id\x00" + NEW.encode()).hexdigest()[:12]
    )
    assert parse_ledger_keys(OLD).current != keys.current
    assert "n" * 40 not in repr(keys)


def test_without_the_setting_a_local_key_file_is_made_once_and_kept(tmp_path: Path) -> None:
    settings = load_settings({"CDLM_DATA_DIR": str(tmp_path)})
    first = keyring_from(settings)
    path = tmp_path / LEDGER_KEY_FILE
    assert path.stat().st_mode & 0o777 == 0o600
    assert keyring_from(settings) == first
    assert first.keys[first.current] == path.read_text().strip().encode()
    given = load_settings({"CDLM_DATA_DIR": str(tmp_path), "CDLM_LEDGER_KEY": f"k3:{NEW}"})
    assert keyring_from(given).current == "k3"


def test_a_local_key_file_too_short_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / LEDGER_KEY_FILE).write_text("tiny")
    with pytest.raises(ConfigError, match=r"^CDLM_LEDGER_KEY: is unset and .* at least 32"):
        keyring_from(load_settings({"CDLM_DATA_DIR": str(tmp_path)}))
