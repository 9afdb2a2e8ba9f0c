"""Transaction-scoped PostgreSQL advisory locks: named by text, and the append lock of a
hash-chained ledger."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from tortoise.connection import get_connection

from cdlm.core import chain


def lock_key(name: str) -> int:
    """The 64-bit advisory lock key of ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


async def lock_names(names: Iterable[str]) -> None:
    """Hold a lock per name until the transaction ends, taken in one fixed order (so two
    transactions locking overlapping names cannot deadlock)."""
    keys = sorted({lock_key(name) for name in names})
    if keys:
        await get_connection("default").execute_query(
            "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k ORDER BY k", [keys]
        )


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
    return str(rows[0]["hash"]) if rows else chain.GENESIS_HASH
