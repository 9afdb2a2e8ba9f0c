"""Writing, reading and verifying the audit trail.

Each entry's ``hash`` is an HMAC-SHA256, under the ledger key (:mod:`cdlm.core.chain`), of its
canonical content and the previous entry's hash, so editing or deleting any entry breaks the
chain at that point, and someone holding only the database cannot forge a new chain. Writers
take a transaction-scoped advisory lock, so concurrent writers append one after another, and
the entry commits or rolls back with the change it records.

Reads of personal data are recorded differently: :func:`record_read` inserts one record per
request into the ``audit_pending`` inbox, without the lock and without reading the chain's
head, and the sequencer (:mod:`cdlm.audit.sequencer`) appends pending records to the chain in
arrival order within seconds. A write first chains the reads pending before it, so the chain
keeps reads and writes in the order they happened.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from tortoise.connection import get_connection
from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from cdlm.audit.models import AuditEntry, AuditPending
from cdlm.core import chain, clock
from cdlm.core.locks import lock_and_read_head
from cdlm.core.logs import request_id_var
from cdlm.core.principal import Principal

GENESIS_HASH = chain.GENESIS_HASH
AUDIT_LOCK_KEY = 0x61756474  # "audt"
VERIFY_BATCH = 2000
#: At most this many pending read records are chained by a write before its own entry (only a
#: backlog left by a stopped sequencer is larger; its older reads are then chained after).
WRITE_CATCH_UP = 1000
#: What the records of :func:`record_read` are about unless told otherwise.
READ_TARGET_TYPE = "customer"
#: The target type of data subject requests (their requesters' details are read too).
REQUEST_TARGET_TYPE = "data_subject_request"

_reads_recorded = 0


def content_of(entry: AuditEntry) -> dict[str, Any]:
    """What an entry's hash covers (besides the previous hash and the key id)."""
    content = {
        "id": str(entry.id),
        "occurred_at": entry.occurred_at.isoformat(),
        "actor_kind": entry.actor_kind,
        "actor_id": str(entry.actor_id) if entry.actor_id else None,
        "actor_role": entry.actor_role,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "fields": list(entry.fields_touched),
        "request_id": entry.request_id,
    }
    # Only read records cover subjects; other entries hash exactly as they always have.
    if entry.subject_ids is not None:
        content["subject_ids"] = [str(subject) for subject in entry.subject_ids]
    return content


def _sign(entry: AuditEntry) -> None:
    """Give ``entry`` (its ``prev_hash`` set) its key id and keyed hash."""
    entry.key_id, entry.hash = chain.keyring().sign(content_of(entry), entry.prev_hash)


def _new_entry(
    actor: Principal,
    action: str,
    target_type: str | None,
    target_id: uuid.UUID | str | None,
    fields: Iterable[str],
    prev_hash: str,
) -> AuditEntry:
    entry = AuditEntry(
        id=uuid.uuid4(),
        occurred_at=clock.now(),
        actor_kind=actor.kind.value,
        actor_id=actor.id,
        actor_role=actor.role.value if actor.role else None,
        action=action,
        target_type=target_type,
        target_id=str(target_id) if target_id is not None else None,
        fields_touched=sorted(set(fields)),
        request_id=request_id_var.get(),
        prev_hash=prev_hash,
    )
    _sign(entry)
    return entry


async def _head_hash() -> str:
    return await lock_and_read_head(AUDIT_LOCK_KEY, "audit_entries")


async def read_head() -> str:
    """The chain's last hash. Read it in a statement after the one that took the lock."""
    rows = await get_connection("default").execute_query_dict(
        'SELECT "hash" FROM "audit_entries" ORDER BY "sequence" DESC LIMIT 1'
    )
    return str(rows[0]["hash"]) if rows else GENESIS_HASH


async def chain_pending_locked(head: str, max_entries: int) -> tuple[str, int]:
    """Append up to ``max_entries`` pending read records to the chain after ``head``, oldest
    arrival first; returns the new head and how many were chained.

    The caller holds the audit lock in a transaction: the entries (keeping the records' ids)
    and the removal of the records from the inbox commit or roll back together, so a record is
    never lost nor chained twice.
    """
    pending = await AuditPending.all().order_by("arrival").limit(max_entries)
    if not pending:
        return head, 0
    entries = []
    previous = head
    for record in pending:
        entry = _pending_entry(record, prev_hash=previous)
        _sign(entry)
        entries.append(entry)
        previous = entry.hash
    await AuditEntry.bulk_create(entries)
    removed, _ = await get_connection("default").execute_query(
        'DELETE FROM "audit_pending" WHERE "arrival" = ANY($1::bigint[])',
        [[record.arrival for record in pending]],
    )
    if removed != len(pending):  # only the lock's holder removes records: never expected
        raise RuntimeError(f"chained {len(pending)} pending audit records but removed {removed}")
    return previous, len(entries)


def _pending_entry(record: AuditPending, *, prev_hash: str = "") -> AuditEntry:
    return AuditEntry(
        id=record.id,
        occurred_at=record.occurred_at,
        actor_kind=record.actor_kind,
        actor_id=record.actor_id,
        actor_role=record.actor_role,
        action=record.action,
        target_type=record.target_type,
        target_id=None,
        fields_touched=list(record.fields_touched),
        request_id=record.request_id,
        subject_ids=list(record.subject_ids),
        prev_hash=prev_hash,
    )


async def _head_after_pending() -> str:
    """Take the lock, then chain the reads recorded before this write (see the module)."""
    head, _ = await chain_pending_locked(await _head_hash(), WRITE_CATCH_UP)
    return head


async def record(
    actor: Principal,
    action: str,
    *,
    target_type: str | None = None,
    target_id: uuid.UUID | str | None = None,
    fields: Iterable[str] = (),
) -> AuditEntry:
    """Append an entry in the caller's transaction (or a transaction of its own).

    ``fields`` names the personal fields read or changed; never pass their values.
    """
    async with in_transaction():
        head = await _head_after_pending()
        entry = _new_entry(actor, action, target_type, target_id, fields, head)
        await entry.save()
    return entry


async def record_many(
    actor: Principal,
    action: str,
    *,
    target_type: str,
    target_ids: Sequence[uuid.UUID | str],
    fields: Iterable[str] = (),
) -> list[AuditEntry]:
    """One entry per target, appended with one insert (lists of personal data are read often)."""
    if not target_ids:
        return []
    names = list(fields)
    async with in_transaction():
        previous = await _head_after_pending()
        entries = []
        for target_id in target_ids:
            entry = _new_entry(actor, action, target_type, target_id, names, previous)
            entries.append(entry)
            previous = entry.hash
        await AuditEntry.bulk_create(entries)
    return entries


async def record_read(
    actor: Principal,
    customer_ids: Sequence[uuid.UUID],
    fields: Iterable[str],
    *,
    action: str = "customer.read",
    request_id: str | None = None,
    target_type: str = READ_TARGET_TYPE,
) -> uuid.UUID | None:
    """Record that ``actor`` read these customers' personal ``fields``: one record for them all,
    inserted with one statement, without the audit lock and without reading the chain's head.

    The record is pending until the sequencer chains it (within seconds; the entry keeps the
    returned id); :func:`about_subject` and :func:`verify_chain` see it meanwhile. It commits
    with the caller's transaction, if any, else at once. ``fields`` names the personal fields
    read, never their values, and may be empty. ``request_id`` defaults to the current
    request's. ``target_type`` says what the ids are when they are not customers (e.g.
    ``data_subject_request`` for requesters' details). Nothing is written (None) when
    ``customer_ids`` is empty.
    """
    global _reads_recorded
    subjects = sorted(set(customer_ids))
    if not subjects:
        return None
    record_id = uuid.uuid4()
    await get_connection("default").execute_query(
        'INSERT INTO "audit_pending" ("id", "occurred_at", "actor_kind", "actor_id", '
        '"actor_role", "action", "target_type", "fields_touched", "request_id", "subject_ids") '
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text[], $9, $10::uuid[])",
        [
            record_id,
            clock.now(),
            actor.kind.value,
            actor.id,
            actor.role.value if actor.role else None,
            action,
            target_type,
            sorted(set(fields)),
            request_id if request_id is not None else request_id_var.get(),
            subjects,
        ],
    )
    _reads_recorded += 1
    return record_id


def reads_recorded() -> int:
    """How many read records this process has written (the Lambda handler chains after a
    request that wrote one)."""
    return _reads_recorded


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list; every criterion is optional."""

    actor_id: uuid.UUID | None = None
    #: How the actor authenticated (``PrincipalKind`` value: user, api_key, system...).
    actor_kind: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None


def entries(criteria: AuditFilter) -> QuerySet[AuditEntry]:
    """Entries matching ``criteria`` (unordered; paginate it)."""
    query = AuditEntry.all()
    if criteria.actor_id is not None:
        query = query.filter(actor_id=criteria.actor_id)
    if criteria.actor_kind is not None:
        query = query.filter(actor_kind=criteria.actor_kind)
    if criteria.action is not None:
        query = query.filter(action=criteria.action)
    if criteria.target_type is not None:
        query = query.filter(target_type=criteria.target_type)
    if criteria.target_id is not None:
        covered = _as_uuid(criteria.target_id)
        if covered is not None:
            # A read record covers its targets in subject_ids, not target_id.
            query = query.filter(
                Q(target_id=criteria.target_id) | Q(subject_ids__contains=[covered])
            )
        else:
            query = query.filter(target_id=criteria.target_id)
    if criteria.occurred_from is not None:
        query = query.filter(occurred_at__gte=criteria.occurred_from)
    if criteria.occurred_to is not None:
        query = query.filter(occurred_at__lt=criteria.occurred_to)
    return query


async def entries_by_ids(ids: Sequence[uuid.UUID]) -> list[AuditEntry | None]:
    """Chained entries by id, in order (None for an id of no entry, or of a read record
    not chained yet)."""
    found = {entry.id: entry for entry in await AuditEntry.filter(id__in=list(ids))}
    return [found.get(entry_id) for entry_id in ids]


def _as_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


async def about_subject(
    customer_ids: Sequence[uuid.UUID], request_ids: Sequence[uuid.UUID]
) -> list[AuditEntry]:
    """Entries whose target is one of the person's profiles or data subject requests, or read
    records covering one of them, in the order they were chained, then the read records still
    pending in arrival order: who read or changed that person's data.

    Pending records come as unsaved entries (``sequence`` None, no hash). A read record's
    ``subject_ids`` names the others read in the same request: never show it to the person.
    The inbox is read first: a record moves only from it into the chain, so one moved between
    the two queries is found (once) in the chain instead of being missed.
    """
    covered = []
    targets = []
    for target_type, ids in (
        (READ_TARGET_TYPE, list(customer_ids)),
        (REQUEST_TARGET_TYPE, list(request_ids)),
    ):
        if ids:
            covered.append(Q(target_type=target_type, subject_ids__overlap=ids))
            targets.append(Q(target_type=target_type, target_id__in=[str(i) for i in ids]))
    if not targets:
        return []
    pending = await AuditPending.filter(Q(*covered, join_type="OR")).order_by("arrival")
    chained = list(
        await AuditEntry.filter(Q(*targets, *covered, join_type="OR")).order_by("sequence")
    )
    seen = {entry.id for entry in chained}
    return chained + [_pending_entry(r) for r in pending if r.id not in seen]


@dataclass(frozen=True)
class ChainReport:
    """Result of re-computing the chain."""

    ok: bool
    entries_checked: int
    head_hash: str
    first_broken_sequence: int | None = None
    first_broken_id: uuid.UUID | None = None
    problem: chain.ChainProblem | None = None
    #: Read records not chained yet (neither missing nor broken: the sequencer chains them).
    pending: int = 0
    #: How long the oldest of them has waited; None when none is pending.
    oldest_pending_age: timedelta | None = None


async def pending_reads() -> tuple[int, timedelta | None]:
    """How many read records wait to be chained, and how long the oldest has waited."""
    rows = await get_connection("default").execute_query_dict(
        'SELECT count(*) AS "count", min("occurred_at") AS "oldest" FROM "audit_pending"'
    )
    count, oldest = int(rows[0]["count"]), rows[0]["oldest"]
    if oldest is None:
        return count, None
    return count, max(clock.now() - oldest, timedelta(0))


async def verify_chain() -> ChainReport:
    """Walk the whole trail in order and report the first broken link, if any, and the read
    records still pending (counted before the walk, so one chained meanwhile is counted as
    both rather than neither)."""
    pending, oldest_pending_age = await pending_reads()
    walk = chain.Walk()
    checked = 0
    after = 0
    while True:
        batch = await AuditEntry.filter(sequence__gt=after).order_by("sequence").limit(VERIFY_BATCH)
        if not batch:
            return ChainReport(
                ok=True,
                entries_checked=checked,
                head_hash=walk.previous,
                pending=pending,
                oldest_pending_age=oldest_pending_age,
            )
        previous, broken = chain.check(batch, walk, content_of)
        if broken is not None:
            entry = batch[broken.position]
            return ChainReport(
                ok=False,
                entries_checked=checked + broken.position,
                head_hash=previous,
                first_broken_sequence=entry.sequence,
                first_broken_id=entry.id,
                problem=broken.problem,
                pending=pending,
                oldest_pending_age=oldest_pending_age,
            )
        checked += len(batch)
        after = batch[-1].sequence
