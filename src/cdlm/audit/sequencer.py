"""The audit sequencer: appends pending read records (``audit_pending``) to the hash chain.

:func:`cdlm.audit.service.record_read` writes a request's reads without any lock; this module
chains them, oldest arrival first, into one stripe of the trail (:mod:`cdlm.core.stripes`) per
batch, each batch in one transaction (the entries and the removal from the inbox commit
together, so a crash loses or duplicates none). One sequencer at a time holds the inbox lock;
the stripe it appends to is the first free one, so it does not queue behind a writer and
writers to other stripes do not wait for it. Within a stripe, the sequence the entries get is
the order they are chained in.

Who runs it (see :mod:`cdlm.jobs.audit_sequencer`): ``cdlm serve`` and ``cdlm worker`` about
every second; on Lambda, the HTTP function after a request that recorded reads (at most about
once a second per container, never waiting for a lock) and a scheduled function.
"""

from __future__ import annotations

import secrets

from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from cdlm.audit import service
from cdlm.core.locks import lock_key
from cdlm.core.stripes import STRIPES

#: Records chained per transaction.
BATCH = 500
#: The lock of the inbox: one sequencer moves records at a time.
INBOX_LOCK_KEY = lock_key("audit-inbox")


def _stripes_from_random() -> list[int]:
    start = secrets.randbelow(STRIPES)
    return [(start + offset) % STRIPES for offset in range(STRIPES)]


async def chain_pending(max_entries: int = BATCH) -> int:
    """Chain up to ``max_entries`` pending records, waiting for the inbox lock if another
    sequencer holds it (and for a stripe only if writers hold every one); returns how many
    were chained (0 when none was pending)."""
    async with in_transaction():
        await get_connection("default").execute_query(
            "SELECT pg_advisory_xact_lock($1)", [INBOX_LOCK_KEY]
        )
        order = _stripes_from_random()
        locked = await service.LEDGER.try_lock_any(order)
        if locked is None:
            locked = order[0], (await service.LEDGER.lock([order[0]]))[order[0]]
        _, chained = await service.chain_pending_locked(*locked, max_entries)
    return chained


async def try_chain_pending(max_entries: int = BATCH) -> int | None:
    """As :func:`chain_pending`, but never waits: None when another sequencer holds the inbox
    lock or writers hold every stripe."""
    async with in_transaction():
        rows = await get_connection("default").execute_query_dict(
            'SELECT pg_try_advisory_xact_lock($1) AS "locked"', [INBOX_LOCK_KEY]
        )
        if not rows[0]["locked"]:
            return None
        locked = await service.LEDGER.try_lock_any(_stripes_from_random())
        if locked is None:
            return None
        _, chained = await service.chain_pending_locked(*locked, max_entries)
    return chained


async def chain_all(
    *, wait: bool = True, max_entries: int = BATCH, max_batches: int | None = None
) -> int:
    """Chain what is pending, a batch per transaction, until a batch is not full (or after
    ``max_batches``); returns how many were chained. With ``wait=False`` it stops, having
    chained what it could, as soon as a lock it needs is held by someone else."""
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
