"""API key format and the in-process cache of verified secrets.

A key reads ``cdlm_<key_id>_<secret>``. Only an argon2id hash of the secret is stored, so
checking a key costs a full argon2 verification. A warm process remembers, for a few minutes,
the SHA-256 digest of secrets it has already verified, and, for :data:`PRINCIPAL_TTL` (5
seconds), the caller a key stands for: within that bound a request with a known key reads no
row at all. A key revoked through this process stops working at once; one revoked by another
process (another Lambda container) within :data:`PRINCIPAL_TTL`, when this process next reads
the key's row. Expiry is checked on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Generic, TypeVar

from cdlm.core import clock
from cdlm.core.principal import Principal

PREFIX = "cdlm"
_KEY = re.compile(r"^cdlm_([0-9a-f]{16})_([A-Za-z0-9_-]{43})$")


@dataclass(frozen=True)
class ParsedKey:
    """The two parts of a presented API key."""

    key_id: str
    secret: str


def new_key() -> tuple[str, str, str]:
    """A fresh ``(key_id, secret, full_key)``."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    return key_id, secret, f"{PREFIX}_{key_id}_{secret}"


def looks_like_api_key(credential: str) -> bool:
    """True for strings in API key shape (as opposed to access tokens)."""
    return credential.startswith(f"{PREFIX}_")


def parse_key(credential: str) -> ParsedKey | None:
    """The parts of ``credential``, or None when it is not a well-formed key."""
    match = _KEY.fullmatch(credential)
    if match is None:
        return None
    return ParsedKey(key_id=match.group(1), secret=match.group(2))


V = TypeVar("V")


class _Bounded(Generic[V]):
    """At most ``max_entries`` values by key; the least recently used goes first."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str) -> V | None:
        return self._entries.get(key)

    def used(self, key: str) -> None:
        self._entries.move_to_end(key)

    def put(self, key: str, value: V) -> None:
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, key: str) -> None:
        """Drop ``key``."""
        self._entries.pop(key, None)

    def __len__(self) -> int:
        return len(self._entries)


class VerifiedSecretCache(_Bounded[tuple[bytes, float]]):
    """Bounded, expiring memory of ``key_id -> sha256(secret)`` already verified with argon2."""

    def __init__(self, max_entries: int = 1024, ttl_seconds: float = 300.0) -> None:
        super().__init__(max_entries)
        self.ttl_seconds = ttl_seconds

    @staticmethod
    def _digest(secret: str) -> bytes:
        return hashlib.sha256(secret.encode()).digest()

    def contains(self, key_id: str, secret: str) -> bool:
        """True when this exact secret was verified for ``key_id`` recently."""
        entry = self.get(key_id)
        if entry is None:
            return False
        digest, stored_at = entry
        if time.monotonic() - stored_at > self.ttl_seconds:
            self.forget(key_id)
            return False
        if not hmac.compare_digest(digest, self._digest(secret)):
            return False
        self.used(key_id)
        return True

    def remember(self, key_id: str, secret: str) -> None:
        """Record a successful verification, evicting the least recently used beyond the bound."""
        self.put(key_id, (self._digest(secret), time.monotonic()))


#: How long a process answers for a key without reading its row: the bound within which a
#: revocation made by another process takes effect here.
PRINCIPAL_TTL = timedelta(seconds=5)


@dataclass(frozen=True)
class KnownKey:
    """A key whose row was read and whose secret was verified at ``checked_at``."""

    digest: bytes
    principal: Principal
    expires_at: datetime | None
    checked_at: datetime


class PrincipalCache(_Bounded[KnownKey]):
    """Bounded memory of ``key_id -> (secret digest, principal)`` for :data:`PRINCIPAL_TTL`."""

    def __init__(self, max_entries: int = 1024, ttl: timedelta = PRINCIPAL_TTL) -> None:
        super().__init__(max_entries)
        self.ttl = ttl

    def principal(self, key_id: str, secret: str, now: datetime) -> Principal | None:
        """The caller behind this exact key when its row was read within the TTL and the key
        has not expired since; else None (read the row)."""
        known = self.get(key_id)
        if known is None:
            return None
        age = now - known.checked_at
        expired = known.expires_at is not None and known.expires_at <= now
        if expired or not timedelta(0) <= age <= self.ttl:
            self.forget(key_id)
            return None
        digest = hashlib.sha256(secret.encode()).digest()
        if not hmac.compare_digest(known.digest, digest):
            return None
        return known.principal

    def remember(
        self, key_id: str, secret: str, principal: Principal, expires_at: datetime | None
    ) -> None:
        """Record a key whose row was just read and whose secret was verified."""
        digest = hashlib.sha256(secret.encode()).digest()
        self.put(key_id, KnownKey(digest, principal, expires_at, clock.now()))


#: The process's caches (a warm Lambda container keeps them between invocations).
verified_secrets = VerifiedSecretCache()
known_keys = PrincipalCache()


def forget(key_id: str) -> None:
    """Forget everything this process remembers about a key (on revocation)."""
    verified_secrets.forget(key_id)
    known_keys.forget(key_id)
