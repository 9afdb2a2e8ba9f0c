"""Hash chains for append-only ledgers (the audit trail, the consent ledger).

Each entry's hash covers its canonical content and the previous entry's hash, so editing,
removing or reordering an entry breaks the chain at that point. A ledger is several such chains
(stripes), each appended to under its own transaction-scoped advisory lock so its writers queue
up (:mod:`cdlm.core.stripes`). Pure rules: no I/O here.

Two formats, told apart by the entry's ``key_id``:

- keyed (``key_id`` set): HMAC-SHA256 under the ledger key of that id (``CDLM_LEDGER_KEY``), a
  key the database does not hold, over the content, the previous hash and the key id. Someone
  who can rewrite the tables cannot recompute these hashes.
- legacy (``key_id`` null): plain SHA-256 of the content and the previous hash, as entries were
  written before ledgers were keyed. Accepted only as a prefix of the chain: once a keyed entry
  is seen, an unkeyed one after it is a break (:attr:`ChainProblem.UNKEYED_AFTER_KEYED`).

A new key starts by being made current: later entries carry its id, earlier ones keep theirs
and are checked under the old key, kept by id in the keyring (nothing is re-hashed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

GENESIS_HASH = "0" * 64
#: Key ids: short, lower case, safe in file names and logs.
KEY_ID_PATTERN = r"[a-z0-9][a-z0-9_-]{0,31}"


def _canonical(content: dict[str, Any]) -> bytes:
    return json.dumps(content, sort_keys=True, separators=(",", ":")).encode()


def entry_hash(content: dict[str, Any], prev_hash: str) -> str:
    """Legacy (unkeyed) hash: SHA-256 of ``content`` (canonical JSON) chained to ``prev_hash``."""
    return hashlib.sha256(_canonical({**content, "prev_hash": prev_hash})).hexdigest()


class UnknownKey(LookupError):
    """An entry names a ledger key id the keyring does not hold."""


@dataclass(frozen=True)
class Keyring:
    """The ledger keys by id; ``current`` signs new entries, the others only verify."""

    current: str
    keys: Mapping[str, bytes] = field(repr=False)

    def __post_init__(self) -> None:
        if self.current not in self.keys:
            raise ValueError("the current ledger key id is not in the keyring")

    def keyed_hash(self, content: dict[str, Any], prev_hash: str, key_id: str) -> str:
        """HMAC-SHA256 under key ``key_id`` of the content, the previous hash and the key id."""
        key = self.keys.get(key_id)
        if key is None:
            raise UnknownKey(key_id)
        message = _canonical({**content, "prev_hash": prev_hash, "key_id": key_id})
        return hmac.new(key, message, hashlib.sha256).hexdigest()

    def hash_of(self, content: dict[str, Any], prev_hash: str, key_id: str | None) -> str:
        """The hash an entry of format ``key_id`` (None: legacy) must have."""
        if key_id is None:
            return entry_hash(content, prev_hash)
        return self.keyed_hash(content, prev_hash, key_id)

    def sign(self, content: dict[str, Any], prev_hash: str) -> tuple[str, str]:
        """A new entry's ``(key_id, hash)`` under the current key."""
        return self.current, self.keyed_hash(content, prev_hash, self.current)

    def mac(self, message: bytes, key_id: str | None = None) -> str:
        """HMAC-SHA256 of ``message`` under a key (the current one by default), e.g. to seal a
        checkpoint."""
        key = self.keys.get(key_id or self.current)
        if key is None:
            raise UnknownKey(key_id or self.current)
        return hmac.new(key, b"cdlm-checkpoint\x00" + message, hashlib.sha256).hexdigest()


_keyring: Keyring | None = None


def use_keyring(keyring: Keyring) -> None:
    """Install the process's ledger keys (done when the database is opened with settings)."""
    global _keyring
    _keyring = keyring


def keyring() -> Keyring:
    """The process's ledger keys; fails when none was installed."""
    if _keyring is None:
        raise RuntimeError("the ledger key is not loaded (open the database with the settings)")
    return _keyring


class ChainProblem(StrEnum):
    """How a link of a hash chain is broken."""

    PREVIOUS_HASH_MISMATCH = "PREVIOUS_HASH_MISMATCH"
    CONTENT_MISMATCH = "CONTENT_MISMATCH"
    UNKEYED_AFTER_KEYED = "UNKEYED_AFTER_KEYED"
    UNKNOWN_KEY = "UNKNOWN_KEY"
    CHECKPOINT_MISMATCH = "CHECKPOINT_MISMATCH"
    CHECKPOINT_MISSING = "CHECKPOINT_MISSING"


@dataclass(frozen=True)
class BrokenLink:
    """Where a chain first breaks."""

    position: int
    problem: ChainProblem


@dataclass
class Walk:
    """Where a walk along a chain stands: the last good hash, and whether a keyed entry was
    seen (after which an unkeyed one is a break)."""

    previous: str = GENESIS_HASH
    keyed: bool = False


def check(
    entries: Sequence[Any],
    previous: str | Walk,
    content: Callable[[Any], dict[str, Any]],
    keys: Keyring | None = None,
) -> tuple[str, BrokenLink | None]:
    """Walk ``entries`` from ``previous``; returns the last good hash and the first break.

    ``previous`` is a hash (then a legacy prefix is allowed) or a :class:`Walk`, which is
    advanced in place. Entries without a ``key_id`` attribute are legacy. Without ``keys``,
    keyed entries cannot be checked: the installed keyring is used.
    """
    walk = previous if isinstance(previous, Walk) else Walk(previous)
    for position, entry in enumerate(entries):
        key_id = getattr(entry, "key_id", None)
        if entry.prev_hash != walk.previous:
            return walk.previous, BrokenLink(position, ChainProblem.PREVIOUS_HASH_MISMATCH)
        if key_id is None and walk.keyed:
            return walk.previous, BrokenLink(position, ChainProblem.UNKEYED_AFTER_KEYED)
        try:
            if key_id is None:
                expected = entry_hash(content(entry), entry.prev_hash)
            else:
                expected = (keys or keyring()).keyed_hash(content(entry), entry.prev_hash, key_id)
        except UnknownKey:
            return walk.previous, BrokenLink(position, ChainProblem.UNKNOWN_KEY)
        if not hmac.compare_digest(expected, entry.hash):
            return walk.previous, BrokenLink(position, ChainProblem.CONTENT_MISMATCH)
        walk.previous = entry.hash
        walk.keyed = walk.keyed or key_id is not None
    return walk.previous, None
