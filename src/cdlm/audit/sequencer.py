"""The audit sequencer: appends pending read records (``audit_pending``) to the hash chain.

:func:`cdlm.audit.service.record_read` writes a request's reads without the chain's lock; this
module chains them, oldest arrival first, under that lock, each batch in one transaction (the
entries and the removal from the inbox commit together, so a crash loses or duplicates none).
The sequence the entries get is the order they are chained in.

Who runs it (see :mod:`cdlm.jobs.audit_sequencer`): ``cdlm serve`` and ``cdlm worker`` about
every second; on Lambda, the HTTP function after a request that recorded reads (at most about
once a second per container, never waiting for the lock) and a scheduled function.
"""

from __future__ import annotations

from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from cdlm.audit import service
from cdlm.core.locks import lock_and_read_head

#: Records chained per transaction.
BATCH = 500


async def chain_pending(max_entries: int = BATCH) -> int:
    """Chain up to ``max_entries`` pending records, waiting for the audit lock if a writer
    holds it; returns how many were chained (0 when none was pending)."""
    async with in_transaction():
        head = await lock_and_read_head(service.AUDIT_LOCK_KEY, "audit_entries")
        _, chained = await service.chain_pending_locked(head, max_entries)
    return chained


async def try_chain_pending(max_entries: int = BATCH) -> int | None:
    """As :func:`chain_pending`, but never waits: None when another transaction holds the
    audit lock (a writer, which chains pending records itself, or another sequencer)."""
    async with in_transaction():
        rows = await get_connection("default").execute_query_dict(
            'SELECT pg_try_advisory_xact_lock($1) AS "locked"', [service.AUDIT_LOCK_KEY]
        )
        if not rows[0]["locked"]:
            return None
        # A statement of its own: its snapshot is taken after the lock was granted.
        head = await service.read_head()
        _, chained = await service.chain_pending_locked(head, max_entries)
    return chained


async def chain_all(
    *, wait: bool = True, max_entries: int = BATCH, max_batches: int | None = None
) -> int:
    """Chain what is pending, a batch per transaction, until a batch is not full (or after
    ``max_batches``); returns how many were chained. With ``wait=False`` it stops, having
    chained what it could, as soon as the lock is held by someone else."""
    total = 0
    batches = 0
    while max_batches is None or batches < max_batches:
        batches += 1
        chained = await chain_pending(max_entries) if wait else await try_chain_pending(max_entries)
        if chained is None:
            break
        total += chained
        if chained < max_entries:
            break
    return total
