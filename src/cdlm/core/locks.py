"""Transaction-scoped PostgreSQL advisory locks named by text (a ledger's stripe locks:
:mod:`cdlm.core.stripes`)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from tortoise.connection import get_connection


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
