"""Whole months of events: a sweep drops (or archives, then drops) a month of events at once
when its policy disposes of every event in it.

A month qualifies when it ends before the policy's cutoff (every event in it is past its
period), every event in it is of a type the policy governs, and no legal hold keeps any of them
(on its customer, on the category, or on its type). Anything else, or a month still locked by
other work after :data:`LOCK_WAIT`, is left to the row-by-row path, which disposes of the
events due one by one and skips the held ones. Months are examined oldest first, one per batch
(``month_cursor`` on the evidence), before the row-by-row path; the evidence records the same
counts, time range and digest as for rows, and the months disposed of whole.
"""

from __future__ import annotations

import logging
import uuid

from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from cdlm.customers import partitions
from cdlm.customers.partitions import Month
from cdlm.retention import archive
from cdlm.retention.categories import EVENT_TYPE, Handler
from cdlm.retention.models import Action, SweepEvidence
from cdlm.vault.service import Vault

#: Events read (and archived) per archive object when a month is archived whole.
ARCHIVE_CHUNK = 5_000
#: How long a drop waits for the queries on events in progress (it needs the table alone for a
#: moment) before the month is left to the row-by-row path.
LOCK_WAIT = "5s"
LOCK_NOT_AVAILABLE = "55P03"
log = logging.getLogger("cdlm.retention")


def applies(evidence: SweepEvidence) -> bool:
    """True when the evidence row's policy may dispose of whole months (events deleted or
    archived: anonymizing keeps the rows)."""
    governs_events = evidence.category == "events" or EVENT_TYPE.fullmatch(evidence.category)
    return bool(governs_events) and evidence.action in (Action.DELETE, Action.ARCHIVE)


def _held_types(category: str, held_categories: frozenset[str]) -> list[str] | None:
    """The event types a category hold keeps (None: every type)."""
    if "events" in held_categories or category in held_categories:
        return None
    return [c.removeprefix("events.") for c in held_categories if c.startswith("events.")]


def _lock_not_available(error: BaseException) -> bool:
    current: BaseException | None = error
    while current is not None:
        if getattr(current, "sqlstate", None) == LOCK_NOT_AVAILABLE:
            return True
        current = current.__cause__ or current.__context__
    return False


async def next_month(evidence: SweepEvidence) -> Month | None:
    """The next month to examine: after the evidence's ``month_cursor``, ending by its cutoff."""
    for month in await partitions.months():
        if month.end <= evidence.cutoff and (
            evidence.month_cursor is None or month.label > evidence.month_cursor
        ):
            return month
    return None


async def dispose_month(
    evidence: SweepEvidence,
    month: Month,
    *,
    own: frozenset[str],
    held_customers: frozenset[uuid.UUID],
    held_categories: frozenset[str],
    vault: Vault,
    store: archive.ArchiveStore,
    handler: Handler,
    archive_prefix: str,
    written: list[str],
) -> bool:
    """Dispose of ``month`` whole if its policy allows (in the caller's transaction); update the
    evidence's counts, range, digest and archive objects. False when the month is left to the
    row-by-row path."""
    evidence.month_cursor = month.label
    match = EVENT_TYPE.fullmatch(evidence.category)
    await partitions.lock_month(month)
    found = await partitions.contents(
        month,
        event_type=match.group(1) if match else None,
        excluded_types=() if match else own,
        held_customers=held_customers,
        held_types=_held_types(evidence.category, held_categories),
    )
    if found.total == 0 or found.outside or found.held:
        return False
    digest = await partitions.chained_digest(month, evidence.digest, evidence.category)
    objects: list[str] = []
    archived = 0
    if evidence.action is Action.ARCHIVE and handler.records is not None:
        after: uuid.UUID | None = None
        while ids := await partitions.ids_in(month, after, ARCHIVE_CHUNK):
            key = f"{archive_prefix}-{month.label}-{len(objects):04d}.jsonl.gz"
            records = await handler.records(vault, [str(i) for i in ids])
            packed, count = await archive.pack(vault, evidence.category, records)
            written.append(key)
            objects.append(key)
            await store.put(key, packed)
            archived += count
            after = ids[-1]
    connection = get_connection("default")
    rows = await connection.execute_query_dict("SELECT current_setting('lock_timeout') AS wait")
    try:
        async with in_transaction():  # a savepoint: a drop refused its lock undoes only itself
            await connection.execute_query(
                "SELECT set_config('lock_timeout', $1, true)", [LOCK_WAIT]
            )
            await partitions.drop_month(month)
            await connection.execute_query(
                "SELECT set_config('lock_timeout', $1, true)", [rows[0]["wait"]]
            )
    except Exception as error:
        if not _lock_not_available(error):
            raise
        log.warning("retention: a month of events stayed busy; disposed of row by row")
        for key in objects:
            await store.delete(key)
            written.remove(key)
        return False
    evidence.months = [*evidence.months, month.label]
    evidence.archive_objects = [*evidence.archive_objects, *objects]
    evidence.archived += archived
    evidence.disposed += found.total
    if found.first_at is not None and found.last_at is not None:
        evidence.first_at = min(evidence.first_at or found.first_at, found.first_at)
        evidence.last_at = max(evidence.last_at or found.last_at, found.last_at)
    evidence.digest = digest
    return True
