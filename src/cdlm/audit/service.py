"""Writing, reading and verifying the audit trail.

Each entry's ``hash`` is SHA-256 over its canonical content and the previous entry's hash, so
editing or deleting any entry breaks the chain at that point. Writers take a transaction-scoped
advisory lock, so concurrent writers append one after another, and the entry commits or rolls
back with the change it records.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from cdlm.audit.models import AuditEntry
from cdlm.core import chain, clock
from cdlm.core.locks import lock_and_read_head
from cdlm.core.logs import request_id_var
from cdlm.core.principal import Principal

GENESIS_HASH = chain.GENESIS_HASH
AUDIT_LOCK_KEY = 0x61756474  # "audt"
VERIFY_BATCH = 2000


def _content(entry: AuditEntry) -> dict[str, Any]:
    return {
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


def _entry_hash(entry: AuditEntry) -> str:
    return chain.entry_hash(_content(entry), entry.prev_hash)


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
    entry.hash = _entry_hash(entry)
    return entry


async def _head_hash() -> str:
    return await lock_and_read_head(AUDIT_LOCK_KEY, "audit_entries")


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
        entry = _new_entry(actor, action, target_type, target_id, fields, await _head_hash())
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
        previous = await _head_hash()
        entries = []
        for target_id in target_ids:
            entry = _new_entry(actor, action, target_type, target_id, names, previous)
            entries.append(entry)
            previous = entry.hash
        await AuditEntry.bulk_create(entries)
    return entries


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list; every criterion is optional."""

    actor_id: uuid.UUID | None = None
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
    if criteria.action is not None:
        query = query.filter(action=criteria.action)
    if criteria.target_type is not None:
        query = query.filter(target_type=criteria.target_type)
    if criteria.target_id is not None:
        query = query.filter(target_id=criteria.target_id)
    if criteria.occurred_from is not None:
        query = query.filter(occurred_at__gte=criteria.occurred_from)
    if criteria.occurred_to is not None:
        query = query.filter(occurred_at__lt=criteria.occurred_to)
    return query


async def about_subject(
    customer_ids: Sequence[uuid.UUID], request_ids: Sequence[uuid.UUID]
) -> list[AuditEntry]:
    """Entries whose target is one of the person's profiles or data subject requests, in the
    order they were written (one query): who read or changed that person's data."""
    targets = []
    if customer_ids:
        ids = [str(c) for c in customer_ids]
        targets.append(Q(target_type="customer", target_id__in=ids))
    if request_ids:
        ids = [str(r) for r in request_ids]
        targets.append(Q(target_type="data_subject_request", target_id__in=ids))
    if not targets:
        return []
    return list(await AuditEntry.filter(Q(*targets, join_type="OR")).order_by("sequence"))


@dataclass(frozen=True)
class ChainReport:
    """Result of re-computing the chain."""

    ok: bool
    entries_checked: int
    head_hash: str
    first_broken_sequence: int | None = None
    first_broken_id: uuid.UUID | None = None
    problem: str | None = None


async def verify_chain() -> ChainReport:
    """Walk the whole trail in order and report the first broken link, if any."""
    previous = GENESIS_HASH
    checked = 0
    after = 0
    while True:
        batch = await AuditEntry.filter(sequence__gt=after).order_by("sequence").limit(VERIFY_BATCH)
        if not batch:
            return ChainReport(ok=True, entries_checked=checked, head_hash=previous)
        previous, broken = chain.check(batch, previous, _content)
        if broken is not None:
            entry = batch[broken.position]
            return ChainReport(
                ok=False,
                entries_checked=checked + broken.position,
                head_hash=previous,
                first_broken_sequence=entry.sequence,
                first_broken_id=entry.id,
                problem=broken.problem,
            )
        checked += len(batch)
        after = batch[-1].sequence
