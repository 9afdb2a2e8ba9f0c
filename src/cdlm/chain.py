"""Hash chains for append-only ledgers (the audit trail, the consent ledger).

Each entry's hash is SHA-256 over its canonical content and the previous entry's hash; writers
append under a transaction-scoped advisory lock so concurrent writers queue up.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.connection import get_connection

GENESIS_HASH = "0" * 64


def entry_hash(content: dict[str, Any], prev_hash: str) -> str:
    """SHA-256 of ``content`` (canonical JSON) chained to ``prev_hash``."""
    canonical = json.dumps(
        {**content, "prev_hash": prev_hash}, sort_keys=True, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


async def lock_and_read_head(lock_key: int, table: str) -> str:
    """Take the table's append lock (until commit), then read its last hash.

    Two statements on purpose: a statement's snapshot is taken when it starts, so a read in
    the same statement as the lock could see the head from before the lock was granted.
    """
    connection = get_connection("default")
    await connection.execute_query("SELECT pg_advisory_xact_lock($1)", [lock_key])
    rows = await connection.execute_query_dict(
        f'SELECT "hash" FROM "{table}" ORDER BY "sequence" DESC LIMIT 1'  # noqa: S608
    )
    return str(rows[0]["hash"]) if rows else GENESIS_HASH


@dataclass(frozen=True)
class BrokenLink:
    """Where a chain first breaks."""

    position: int
    problem: str


def check(
    entries: Sequence[Any], previous: str, content: Callable[[Any], dict[str, Any]]
) -> tuple[str, BrokenLink | None]:
    """Walk ``entries`` from ``previous``; returns the last good hash and the first break."""
    for position, entry in enumerate(entries):
        if entry.prev_hash != previous:
            return previous, BrokenLink(position, "prev_hash does not match the previous entry")
        if entry_hash(content(entry), entry.prev_hash) != entry.hash:
            return previous, BrokenLink(position, "content does not match its hash")
        previous = entry.hash
    return previous, None
