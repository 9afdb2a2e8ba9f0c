"""Helpers of the ledger tests: tampering as the tables' owner, and checkpoint stores."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg

from cdlm.audit import service as audit
from cdlm.audit.models import AuditEntry
from cdlm.config import Settings
from cdlm.core import chain
from cdlm.core.principal import SYSTEM
from cdlm.core.writeonce import DirectoryStore
from cdlm.jobs import ledger_checkpoint
from cdlm.ledgers import verify as ledgers
from cdlm.ledgers.checkpoints import CheckpointStore


@asynccontextmanager
async def tampering(owner: asyncpg.Connection, table: str) -> AsyncIterator[asyncpg.Connection]:
    """What only the owner can do (the app role cannot: tests/db/test_roles.py): switch off a
    ledger's append-only trigger for a while."""
    await owner.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_append_only")
    try:
        yield owner
    finally:
        await owner.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_append_only")


def local(settings: Settings, tmp_path: Path) -> Settings:
    """The test settings with a checkpoint directory of this test's own."""
    return replace(settings, checkpoint_dir=tmp_path / "checkpoints")


def store_of(settings: Settings) -> CheckpointStore:
    """The checkpoint store ``settings`` name (a directory here)."""
    return CheckpointStore(DirectoryStore(settings.checkpoint_dir), chain.keyring())


#: The stripe :func:`audit_entries` writes to (not 0: its entries' hashes cover the stripe).
STRIPE = 3


def target_in(stripe: int, number: int | str, target_type: str = "job") -> str:
    """A target id, numbered ``number``, whose audit entries go to ``stripe``."""
    suffix = 0
    while audit.stripe_for(target_type, f"{number}.{suffix}") != stripe:
        suffix += 1
    return f"{number}.{suffix}"


async def audit_entries(count: int, start: int = 0, stripe: int = STRIPE) -> list[AuditEntry]:
    """Write ``count`` audit entries to ``stripe`` (one chain); returns every entry of that
    stripe, in order."""
    for number in range(start, start + count):
        await audit.record(
            SYSTEM, "job.run", target_type="job", target_id=target_in(stripe, number)
        )
    return list(await AuditEntry.filter(stripe=stripe).order_by("sequence"))


AUDIT_COLUMNS = (
    "sequence", "id", "occurred_at", "actor_kind", "actor_id", "actor_role", "action",
    "target_type", "target_id", "fields_touched", "request_id", "subject_ids", "prev_hash",
    "hash", "key_id", "stripe",
)  # fmt: skip


def sha256_hash(entry: AuditEntry, previous: str) -> tuple[str | None, str]:
    """A forger's legacy hash (plain SHA-256: no key needed)."""
    return None, chain.entry_hash(audit.content_of(entry), previous)


def wrong_key_hash(key_id: str) -> Callable[[AuditEntry, str], tuple[str | None, str]]:
    """A forger's keyed hash under a key of their own, claiming the real key's id."""

    def sign(entry: AuditEntry, previous: str) -> tuple[str | None, str]:
        message = json.dumps(
            {**audit.content_of(entry), "prev_hash": previous, "key_id": key_id},
            sort_keys=True,
            separators=(",", ":"),
        ).encode()
        return key_id, hmac.new(b"f" * 48, message, hashlib.sha256).hexdigest()

    return sign


async def rewrite_audit(
    owner: asyncpg.Connection,
    entries: list[AuditEntry],
    start: int,
    sign: Callable[[AuditEntry, str], tuple[str | None, str]],
    change: Callable[[AuditEntry], None] = lambda entry: None,
) -> None:
    """As the owner: replace ``entries[start:]`` by re-chained copies (``change``d, hashed by
    ``sign``), keeping their sequences: a consistent-looking forgery from that point."""
    previous = entries[start - 1].hash if start else chain.GENESIS_HASH
    rows: list[tuple[Any, ...]] = []
    for entry in entries[start:]:
        change(entry)
        entry.prev_hash = previous
        entry.key_id, entry.hash = sign(entry, previous)
        previous = entry.hash
        rows.append(
            (
                entry.sequence, entry.id, entry.occurred_at, entry.actor_kind, entry.actor_id,
                entry.actor_role, entry.action, entry.target_type, entry.target_id,
                json.dumps(entry.fields_touched), entry.request_id, entry.subject_ids,
                entry.prev_hash, entry.hash, entry.key_id, entry.stripe,
            )
        )  # fmt: skip
    sequences = [entry.sequence for entry in entries[start:]]
    async with tampering(owner, "audit_entries") as connection:
        await connection.execute(
            "DELETE FROM audit_entries WHERE sequence = ANY($1::bigint[])", sequences
        )
        columns = ", ".join(AUDIT_COLUMNS)
        marks = ", ".join(
            f"${n}::jsonb" if name == "fields_touched" else f"${n}"
            for n, name in enumerate(AUDIT_COLUMNS, 1)
        )
        await connection.executemany(
            f"INSERT INTO audit_entries ({columns}) VALUES ({marks})",
            rows,
        )


async def run_job(settings: Settings, **options: bool) -> dict[str, ledgers.Verification]:
    """Run the checkpoint job (it must get the lock); its reports by ledger."""
    reports = await ledger_checkpoint.run(settings, **options)
    assert reports is not None
    return {report.ledger: report for report in reports}
