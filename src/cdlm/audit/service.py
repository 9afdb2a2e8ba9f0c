"""Writing, reading and verifying the audit trail.

Each entry's ``hash`` is an HMAC-SHA256, under the ledger key (:mod:`cdlm.core.chain`), of its
canonical content and the previous entry's hash, so editing or deleting any entry breaks the
chain at that point, and someone holding only the database cannot forge a new chain.

The trail is striped (:mod:`cdlm.core.stripes`): :data:`~cdlm.core.stripes.STRIPES` chains,
each with its own lock. A write locks one stripe, chosen by its target (so concurrent writes
about different records rarely meet), and the entry commits or rolls back with the change it
records. A transaction writing several entries keeps to the stripe of its first one, so it never
holds two audit stripes (no deadlock between two transactions touching the same records in
opposite orders).

Reads of personal data are recorded differently: :func:`record_read` inserts one record per
request into the ``audit_pending`` inbox, without any lock and without reading a head, and the
sequencer (:mod:`cdlm.audit.sequencer`) appends pending records, in arrival order, to a stripe it
locks, within seconds. Writes do not chain pending reads: each entry keeps the time it happened
(``occurred_at``), and :func:`about_subject` shows the pending ones meanwhile.
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
from cdlm.core.logs import request_id_var
from cdlm.core.principal import Principal
from cdlm.core.stripes import StripedTable, check_all, stripe_of

GENESIS_HASH = chain.GENESIS_HASH
#: The trail's stripes and their locks.
LEDGER = StripedTable("audit", "audit_entries")
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
    # Likewise for stripe 0; an entry of another stripe covers it (it cannot be moved).
    if entry.stripe:
        content["stripe"] = entry.stripe
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
    stripe: int,
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
        stripe=stripe,
        prev_hash=prev_hash,
    )
    _sign(entry)
    return entry


def stripe_for(target_type: str | None, target_id: uuid.UUID | str | None) -> int | None:
    """The stripe a write about this target prefers (None without a target: any will do)."""
    if target_id is None:
        return None
    return stripe_of(f"{target_type}:{target_id}")


async def _lock_stripe(preferred: int | None) -> tuple[int, str]:
    """Lock the stripe of this transaction's audit writes (``preferred`` for its first one; a
    random one when None) and read its head."""
    if preferred is None:
        preferred = stripe_of(str(uuid.uuid4()))
    return await LEDGER.lock_one_per_transaction(preferred)


async def chain_pending_locked(stripe: int, head: str, max_entries: int) -> tuple[str, int]:
    """Append up to ``max_entries`` pending read records to ``stripe`` after ``head``, oldest
    arrival first; returns the new head and how many were chained.

    The caller holds the sequencer's inbox lock and the stripe's lock in a transaction: the
    entries (keeping the records' ids) and the removal of the records from the inbox commit or
    roll back together, so a record is never lost nor chained twice.
    """
    pending = await AuditPending.all().order_by("arrival").limit(max_entries)
    if not pending:
        return head, 0
    entries = []
    previous = head
    for record in pending:
        entry = _pending_entry(record, stripe=stripe, prev_hash=previous)
        _sign(entry)
        entries.append(entry)
        previous = entry.hash
    await AuditEntry.bulk_create(entries)
    removed, _ = await get_connection("default").execute_query(
        'DELETE FROM "audit_pending" WHERE "arrival" = ANY($1::bigint[])',
        [[record.arrival for record in pending]],
    )
    if removed != len(pending):  # only the inbox lock's holder removes records: never expected
        raise RuntimeError(f"chained {len(pending)} pending audit records but removed {removed}")
    return previous, len(entries)


def _pending_entry(record: AuditPending, *, stripe: int = 0, prev_hash: str = "") -> AuditEntry:
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
        stripe=stripe,
        prev_hash=prev_hash,
    )


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
        stripe, head = await _lock_stripe(stripe_for(target_type, target_id))
        entry = _new_entry(actor, action, target_type, target_id, fields, stripe, head)
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
    """One entry per target, appended with one insert to one stripe (the first target's)."""
    if not target_ids:
        return []
    names = list(fields)
    async with in_transaction():
        stripe, previous = await _lock_stripe(stripe_for(target_type, target_ids[0]))
        entries = []
        for target_id in target_ids:
            entry = _new_entry(actor, action, target_type, target_id, names, stripe, previous)
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
    inserted with one statement, without any audit lock and without reading a chain's head.

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
    """Walk every stripe of the trail from its first entry and report the first broken link
    (lowest sequence), if any, and the read records still pending (counted before the walk, so
    one chained meanwhile is counted as both rather than neither). ``head_hash`` is the newest
    intact entry's."""
    pending, oldest_pending_age = await pending_reads()
    found = await check_all(LEDGER, AuditEntry, content_of)
    broken = found.broken
    return ChainReport(
        ok=broken is None,
        entries_checked=found.checked,
        head_hash=found.head_hash,
        first_broken_sequence=broken.entry.sequence if broken else None,
        first_broken_id=broken.entry.id if broken else None,
        problem=broken.problem if broken else None,
        pending=pending,
        oldest_pending_age=oldest_pending_age,
    )
