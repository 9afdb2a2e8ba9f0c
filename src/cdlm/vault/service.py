"""The vault: per-customer data keys (envelope encryption) and blind indexes.

Every customer gets a random AES-256 data key, stored only wrapped by the master key (local key
or KMS). Personal values are sealed under it with associated data naming the customer and the
field, so a ciphertext copied to another row or customer does not decrypt. Lookups use blind
indexes: HMAC-SHA256 of the normalized value under an installation-wide index key (itself
wrapped by the master key). Destroying a customer's data key makes every copy of their
ciphertext, backups included, unreadable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from tortoise.connection import get_connection

from cdlm.config import ConfigError
from cdlm.core import clock
from cdlm.vault import crypto
from cdlm.vault import purposes as sealed_for
from cdlm.vault.keys import KeyProvider
from cdlm.vault.models import AbsorbedKey, CustomerKey, VaultSecret

BLIND_INDEX_SECRET = "blind-index-key"  # noqa: S105 (the name of a stored secret)


@dataclass(frozen=True)
class Owner:
    """A customer and their data key: who a sealed value belongs to."""

    id: uuid.UUID
    key: bytes


class MissingKey(Exception):
    """The customer's data key does not exist (never created, or crypto-shredded)."""


def _customer_context(customer_id: uuid.UUID) -> str:
    return f"customer-key:{customer_id}"


class _KeyCache:
    """Bounded, expiring memory of unwrapped data keys (KMS calls cost milliseconds)."""

    def __init__(self, max_entries: int, ttl_seconds: float) -> None:
        self.max_entries = max_entries
        self.ttl_seconds = ttl_seconds
        self._entries: OrderedDict[uuid.UUID, tuple[bytes, float]] = OrderedDict()

    def get(self, customer_id: uuid.UUID) -> bytes | None:
        entry = self._entries.get(customer_id)
        if entry is None:
            return None
        if time.monotonic() - entry[1] > self.ttl_seconds:
            del self._entries[customer_id]
            return None
        self._entries.move_to_end(customer_id)
        return entry[0]

    def put(self, customer_id: uuid.UUID, key: bytes) -> None:
        self._entries[customer_id] = (key, time.monotonic())
        self._entries.move_to_end(customer_id)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def drop(self, customer_id: uuid.UUID) -> None:
        self._entries.pop(customer_id, None)


class Vault:
    """Encryption services for personal data; one per process."""

    def __init__(
        self, provider: KeyProvider, *, cache_entries: int = 10_000, cache_ttl: float = 300.0
    ) -> None:
        self.provider = provider
        self._keys = _KeyCache(cache_entries, cache_ttl)
        self._index_key: bytes | None = None

    # ------------------------------------------------------------------ blind indexes

    async def _load_index_key(self) -> bytes:
        row = await VaultSecret.get_or_none(name=BLIND_INDEX_SECRET)
        if row is None:
            wrapped = self.provider.wrap(crypto.new_key(), BLIND_INDEX_SECRET)
            await get_connection("default").execute_query(
                'INSERT INTO "vault_secrets" ("name", "wrapped_secret", "provider", "created_at") '
                'VALUES ($1, $2, $3, $4) ON CONFLICT ("name") DO NOTHING',
                [BLIND_INDEX_SECRET, wrapped, self.provider.name, clock.now()],
            )
            row = await VaultSecret.get(name=BLIND_INDEX_SECRET)
        try:
            return self.provider.unwrap(bytes(row.wrapped_secret), BLIND_INDEX_SECRET)
        except crypto.DecryptionFailed:
            variable = (
                "CDLM_KMS_KEY_ID" if self.provider.name == "aws-kms" else "CDLM_MASTER_KEY_FILE"
            )
            raise ConfigError(
                variable, "is not the master key of this database (its keys do not open)"
            ) from None

    async def ready(self) -> None:
        """Load the blind-index key (created on first use by any process)."""
        if self._index_key is None:
            self._index_key = await self._load_index_key()

    def blind_index(self, kind: str, normalized: str) -> str:
        """Keyed digest of a normalized value of ``kind``; call :meth:`ready` once before."""
        if self._index_key is None:
            raise RuntimeError("Vault.ready() must be awaited before computing blind indexes")
        message = f"{kind}\x00{normalized}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()

    # --------------------------------------------------------------------- data keys

    def new_customer_key(self, customer_id: uuid.UUID) -> tuple[bytes, CustomerKey]:
        """A fresh data key and its (unsaved) wrapped row, for bulk inserts."""
        key = crypto.new_key()
        row = CustomerKey(
            customer_id=customer_id,
            wrapped_key=self.provider.wrap(key, _customer_context(customer_id)),
            provider=self.provider.name,
            created_at=clock.now(),
        )
        self._keys.put(customer_id, key)
        return key, row

    @staticmethod
    async def save_customer_keys(rows: list[CustomerKey]) -> None:
        """Insert keys made by :meth:`new_customer_key` with one statement."""
        if rows:
            await CustomerKey.bulk_create(rows)

    async def create_customer_key(self, customer_id: uuid.UUID) -> bytes:
        """A new data key for ``customer_id``, stored wrapped (in the caller's transaction)."""
        key = crypto.new_key()
        await CustomerKey.create(
            customer_id=customer_id,
            wrapped_key=self.provider.wrap(key, _customer_context(customer_id)),
            provider=self.provider.name,
            created_at=clock.now(),
        )
        self._keys.put(customer_id, key)
        return key

    async def customer_keys(self, customer_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        """Data keys of the customers (one query for those not cached); shredded ones are absent."""
        found: dict[uuid.UUID, bytes] = {}
        missing: list[uuid.UUID] = []
        for customer_id in set(customer_ids):
            key = self._keys.get(customer_id)
            if key is None:
                missing.append(customer_id)
            else:
                found[customer_id] = key
        if missing:
            rows = await CustomerKey.filter(customer_id__in=missing).values_list(
                "customer_id", "wrapped_key"
            )
            for customer_id, wrapped in rows:
                owner = uuid.UUID(str(customer_id))
                found[owner] = self._unwrap(owner, wrapped)
            absorbed = [c for c in missing if c not in found]
            if absorbed:
                found.update(await self._absorbed_keys(absorbed))
        return found

    def _unwrap(self, customer_id: uuid.UUID, wrapped: bytes) -> bytes:
        """A wrapped data key opened with the master key, and remembered."""
        key = self.provider.unwrap(bytes(wrapped), _customer_context(customer_id))
        self._keys.put(customer_id, key)
        return key

    async def keys_of_rows(
        self, wrapped: Mapping[uuid.UUID, bytes | None]
    ) -> dict[uuid.UUID, bytes]:
        """Data keys of customers whose wrapped keys were read with their rows (``None``: no
        key row): unwrapped in memory, no query unless a key row was missing (a merged
        profile's key is kept under its survivor's)."""
        found: dict[uuid.UUID, bytes] = {}
        missing: list[uuid.UUID] = []
        for customer_id, sealed in wrapped.items():
            key = self._keys.get(customer_id)
            if key is None and sealed is not None:
                key = self._unwrap(customer_id, sealed)
            if key is None:
                missing.append(customer_id)
            else:
                found[customer_id] = key
        if missing:
            found.update(await self.customer_keys(missing))
        return found

    async def _absorbed_keys(self, customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, bytes]:
        # Merged profiles' keys, opened with their survivors' keys (one level: a merge of a
        # survivor moves the keys it had absorbed to the new survivor).
        rows = await AbsorbedKey.filter(customer_id__in=customer_ids)
        if not rows:
            return {}
        survivors = await self.customer_keys({r.survivor_id for r in rows})
        found: dict[uuid.UUID, bytes] = {}
        for row in rows:
            survivor_key = survivors.get(row.survivor_id)
            if survivor_key is not None:
                found[row.customer_id] = crypto.open_sealed(
                    survivor_key,
                    bytes(row.sealed_key),
                    self._aad(row.survivor_id, sealed_for.absorbed_key(row.customer_id)),
                )
        return found

    async def absorb(self, merged: Owner, survivor: Owner) -> list[uuid.UUID]:
        """Keep ``merged``'s data key only sealed under ``survivor``'s and destroy its own
        copy; the keys ``merged`` had absorbed move to ``survivor`` too (their ids are
        returned). Erasing the survivor then shreds them all."""
        moved = list(await AbsorbedKey.filter(survivor_id=merged.id))
        for row in moved:
            key = crypto.open_sealed(
                merged.key,
                bytes(row.sealed_key),
                self._aad(merged.id, sealed_for.absorbed_key(row.customer_id)),
            )
            row.survivor_id = survivor.id
            row.sealed_key = self._seal_key(survivor, row.customer_id, key)
            await row.save(update_fields=["survivor_id", "sealed_key"])
        await AbsorbedKey.create(
            customer_id=merged.id,
            survivor_id=survivor.id,
            sealed_key=self._seal_key(survivor, merged.id, merged.key),
            created_at=clock.now(),
        )
        await self.shred(merged.id)
        return [row.customer_id for row in moved]

    async def release(
        self, merged_id: uuid.UUID, survivor: Owner, keys_of: list[uuid.UUID]
    ) -> bytes:
        """Undo :meth:`absorb`: ``merged_id`` gets its own data key back (returned), and the
        absorbed keys ``keys_of`` go back under it."""
        row = await AbsorbedKey.get(customer_id=merged_id)
        key = crypto.open_sealed(
            survivor.key,
            bytes(row.sealed_key),
            self._aad(survivor.id, sealed_for.absorbed_key(merged_id)),
        )
        await row.delete()
        await self.restore_customer_key(merged_id, key)
        restored = Owner(merged_id, key)
        for each in await AbsorbedKey.filter(customer_id__in=keys_of, survivor_id=survivor.id):
            inner = crypto.open_sealed(
                survivor.key,
                bytes(each.sealed_key),
                self._aad(survivor.id, sealed_for.absorbed_key(each.customer_id)),
            )
            each.survivor_id = merged_id
            each.sealed_key = self._seal_key(restored, each.customer_id, inner)
            await each.save(update_fields=["survivor_id", "sealed_key"])
        return key

    def _seal_key(self, owner: Owner, customer_id: uuid.UUID, key: bytes) -> bytes:
        return crypto.seal(
            owner.key, key, self._aad(owner.id, sealed_for.absorbed_key(customer_id))
        )

    async def customer_key(self, customer_id: uuid.UUID) -> bytes:
        """One customer's data key; raises :class:`MissingKey` when it does not exist."""
        keys = await self.customer_keys([customer_id])
        if customer_id not in keys:
            raise MissingKey(str(customer_id))
        return keys[customer_id]

    async def restore_customer_key(self, customer_id: uuid.UUID, key: bytes) -> None:
        """Store ``key`` again as the customer's data key (an undone merge gets back the key its
        archived copies were sealed under)."""
        await CustomerKey.create(
            customer_id=customer_id,
            wrapped_key=self.provider.wrap(key, _customer_context(customer_id)),
            provider=self.provider.name,
            created_at=clock.now(),
        )
        self._keys.put(customer_id, key)

    async def shred(self, customer_id: uuid.UUID) -> bool:
        """Destroy the customer's data key (and the keys of profiles merged into it, which were
        kept under it); True when one existed."""
        self._keys.drop(customer_id)
        await AbsorbedKey.filter(survivor_id=customer_id).delete()
        deleted = await CustomerKey.filter(customer_id=customer_id).delete()
        return deleted > 0

    # ---------------------------------------------------------------------- sealing

    @staticmethod
    def _aad(customer_id: uuid.UUID, purpose: str) -> bytes:
        return f"{customer_id}\x00{purpose}".encode()

    def seal(self, key: bytes, customer_id: uuid.UUID, purpose: str, value: Any) -> bytes:
        """``value`` (JSON-serializable) sealed for ``customer_id`` and ``purpose``."""
        plaintext = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
        return crypto.seal(key, plaintext, self._aad(customer_id, purpose))

    def seal_json(self, key: bytes, customer_id: uuid.UUID, purpose: str, encoded: bytes) -> bytes:
        """Like :meth:`seal` for a value already encoded as JSON (saves encoding it twice)."""
        return crypto.seal(key, encoded, self._aad(customer_id, purpose))

    def open(self, key: bytes, customer_id: uuid.UUID, purpose: str, sealed: bytes) -> Any:
        """What :meth:`seal` sealed; raises ``DecryptionFailed`` when moved or altered."""
        return json.loads(self.open_bytes(key, customer_id, purpose, sealed))

    def reseal(self, sealed: bytes, purpose: str, source: Owner, target: Owner) -> bytes:
        """A value sealed for ``source`` sealed again for ``target`` under the same purpose (it
        is opened only in memory)."""
        return self.seal_json(
            target.key, target.id, purpose, self.open_bytes(source.key, source.id, purpose, sealed)
        )

    def open_bytes(self, key: bytes, customer_id: uuid.UUID, purpose: str, sealed: bytes) -> bytes:
        """The JSON encoding :meth:`seal_json` sealed, undecoded."""
        return crypto.open_sealed(key, bytes(sealed), self._aad(customer_id, purpose))
