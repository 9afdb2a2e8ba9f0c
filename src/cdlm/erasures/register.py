"""The erasure register: append-only, outside the database.

Every erasure (a request's crypto-shredding, and retention's delete, anonymize and
crypto-shred of whole customers) is noted in the erasure's transaction (:func:`note`) and
written to the register once committed (:func:`flush`, after the erasure and on every request
tick, so a failed write is retried). A record names the customer, when, the request and the
blind indexes (keyed HMAC digests) of the identifiers to suppress: never a personal value.

Locally the register is a directory (:class:`DirectoryRegister`); on AWS an S3 bucket with
Object Lock, beside the ledger checkpoints (:func:`register_from`). Both are write-once stores
(:mod:`cdlm.core.writeonce`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from cdlm.config import Settings
from cdlm.core import clock
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.writeonce import DirectoryStore, S3ObjectLockStore, WriteOnceStore
from cdlm.erasures.models import PendingErasure

logger = logging.getLogger("cdlm.erasures")

#: What an erasure did: a request's erasure, or retention's disposal of a whole customer.
ACTIONS = ("erasure", "delete", "anonymize", "crypto_shred")
FORMAT = 1


@dataclass(frozen=True)
class ErasureRecord:
    """One erasure as the register keeps it."""

    customer_id: uuid.UUID
    erased_at: datetime
    action: str
    request_id: uuid.UUID | None = None
    kept: tuple[str, ...] = ()
    identifiers: tuple[tuple[IdentifierKind, str], ...] = field(default=())

    @property
    def name(self) -> str:
        """The record's file (or object) name: time, then customer; never rewritten."""
        moment = self.erased_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        return f"{moment}-{self.customer_id}.json"

    def to_json(self) -> dict[str, Any]:
        """The record as stored."""
        return {
            "format": FORMAT,
            "customer_id": str(self.customer_id),
            "erased_at": self.erased_at.astimezone(UTC).isoformat(),
            "action": self.action,
            "request_id": str(self.request_id) if self.request_id else None,
            "kept": list(self.kept),
            "identifiers": [[kind.value, index] for kind, index in self.identifiers],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ErasureRecord:
        """A stored record (checked: a malformed one raises ``ValueError``)."""
        if data.get("format") != FORMAT or data.get("action") not in ACTIONS:
            raise ValueError("not an erasure record of a known format")
        return cls(
            customer_id=uuid.UUID(data["customer_id"]),
            erased_at=datetime.fromisoformat(data["erased_at"]),
            action=data["action"],
            request_id=uuid.UUID(data["request_id"]) if data.get("request_id") else None,
            kept=tuple(str(c) for c in data.get("kept", [])),
            identifiers=tuple(
                (IdentifierKind(kind), str(index)) for kind, index in data.get("identifiers", [])
            ),
        )


class ErasureRegister(Protocol):
    """Where erasure records are kept, write-once."""

    def append(self, record: ErasureRecord) -> bool:
        """Keep ``record``; False when the register already holds it (never rewritten)."""
        ...

    def since(self, moment: datetime | None) -> list[ErasureRecord]:
        """The records of erasures at or after ``moment`` (all when None), oldest first."""
        ...


class StoreRegister:
    """The register over a write-once store (:mod:`cdlm.core.writeonce`): one JSON document
    per record, named by :attr:`ErasureRecord.name`."""

    def __init__(self, store: WriteOnceStore) -> None:
        self.store = store

    def append(self, record: ErasureRecord) -> bool:
        """Keep ``record``; False when a record of that name is already there."""
        return self.store.put(record.name, json.dumps(record.to_json(), sort_keys=True).encode())

    def since(self, moment: datetime | None) -> list[ErasureRecord]:
        """The records at or after ``moment``, oldest first."""
        records = []
        for name in self.store.names():
            content = self.store.get(name) if name.endswith(".json") else None
            if content is not None:
                records.append(ErasureRecord.from_json(json.loads(content)))
        if moment is not None:
            start = moment.astimezone(UTC)
            records = [r for r in records if r.erased_at >= start]
        return sorted(records, key=lambda r: (r.erased_at, str(r.customer_id)))

    def all(self) -> list[ErasureRecord]:
        """Every record, oldest first."""
        return self.since(None)


class DirectoryRegister(StoreRegister):
    """The register as a directory: one JSON file per record, written atomically."""

    def __init__(self, directory: Path) -> None:
        super().__init__(DirectoryStore(directory))
        self.directory = directory


#: Where erasure records go in the ledger bucket (beside the checkpoints).
S3_PREFIX = "erasures/"


def register_from(settings: Settings) -> ErasureRegister:
    """The installation's register: the S3 bucket with Object Lock ``CDLM_LEDGER_BUCKET``
    names (prefix ``erasures/``), else the directory ``CDLM_ERASURE_REGISTER_DIR``."""
    if settings.ledger_bucket:
        return StoreRegister(
            S3ObjectLockStore(
                settings.ledger_bucket, S3_PREFIX, retention_days=settings.ledger_retention_days
            )
        )
    return DirectoryRegister(settings.erasure_register_dir)


async def note(
    customer_id: uuid.UUID,
    action: str,
    *,
    request_id: uuid.UUID | None = None,
    kept: Iterable[str] = (),
    identifiers: Iterable[tuple[IdentifierKind, str]] = (),
) -> None:
    """Note an erasure in the caller's transaction; :func:`flush` writes it to the register
    once committed."""
    unique = {index: IdentifierKind(kind) for kind, index in identifiers}
    await PendingErasure.create(
        id=uuid.uuid4(),
        customer_id=customer_id,
        action=action,
        request_id=request_id,
        kept=sorted(set(kept)),
        identifiers=[[kind.value, index] for index, kind in sorted(unique.items())],
        erased_at=clock.now(),
    )


def _record(row: PendingErasure) -> ErasureRecord:
    return ErasureRecord(
        customer_id=row.customer_id,
        erased_at=row.erased_at,
        action=row.action,
        request_id=row.request_id,
        kept=tuple(row.kept),
        identifiers=tuple((IdentifierKind(kind), str(index)) for kind, index in row.identifiers),
    )


async def flush(register: ErasureRegister) -> int:
    """Write the committed erasures not yet in the register; how many were written now. A
    write that fails is logged (ids only) and left for the next call: the erasure stands."""
    written = 0
    for row in await PendingErasure.all().order_by("erased_at", "id"):
        try:
            if register.append(_record(row)):
                written += 1
        except OSError as error:
            logger.error(
                "erasure register write failed; retried on the next tick",
                extra={"customer_id": str(row.customer_id), "error": type(error).__name__},
            )
            continue
        await row.delete()
    return written
