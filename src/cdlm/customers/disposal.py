"""Retention disposal of customer data: which events, source records and inactive customers
are past a period, and how they are deleted, anonymized, archived or crypto-shredded.

Called by the retention sweep with bounded pages (see :mod:`cdlm.disposal`); whole customers
through :mod:`cdlm.retention.customer_disposal`, which first forgets what matching keeps about
them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from tortoise.expressions import Q

from cdlm.core import clock
from cdlm.customers import attributes, rights
from cdlm.customers.models import Customer, Event, SourceRecord
from cdlm.disposal import Candidate, DatedRows, delete_rows, due_rows
from cdlm.identity import service as identity
from cdlm.quality import refused as refused_values
from cdlm.vault.service import Vault

# ----------------------------------------------------------------------------- events


async def events_due(
    cutoff: datetime,
    after: str | None,
    limit: int,
    *,
    event_type: str | None = None,
    excluded_types: Iterable[str] = (),
    with_properties_only: bool = False,
) -> list[Candidate]:
    """Events that happened before ``cutoff``, of one type or all but ``excluded_types``.

    Events age from when they happened (``occurredAt``), not from when cdlm received them: a
    history back-filled today is as old as it says, and is not kept longer for arriving late.
    """
    where = Q()
    if event_type is not None:
        where &= Q(type=event_type)
    excluded = list(excluded_types)
    if excluded:
        where &= ~Q(type__in=excluded)
    if with_properties_only:
        where &= Q(properties_sealed__isnull=False)
    events = DatedRows(
        Event, "occurred_at", customer_field="customer_id", kind_field="type", where=where
    )
    return await due_rows(events, cutoff, after, limit)


async def event_records(vault: Vault, ids: list[str]) -> list[tuple[uuid.UUID, dict[str, Any]]]:
    """The events, decrypted, as (customer, record) for an archive."""
    rows = await Event.filter(id__in=[uuid.UUID(i) for i in ids]).order_by("id")
    owners: list[uuid.UUID] = [r.customer_id for r in rows]  # type: ignore[attr-defined]
    keys = await vault.customer_keys(owners)
    return [
        (
            owner,
            {
                "id": str(row.id),
                **rights.event_json(vault, keys.get(owner), row),
                "external_id": row.external_id,
            },
        )
        for owner, row in zip(owners, rows, strict=True)
    ]


async def delete_events(ids: list[str]) -> int:
    """Delete events by id."""
    return await delete_rows(Event, ids)


async def anonymize_events(ids: list[str]) -> int:
    """Drop the events' personal properties (with the item id read from them) and source
    ids; type, time, channel and amount stay for aggregates."""
    if not ids:
        return 0
    return await Event.filter(id__in=[uuid.UUID(i) for i in ids]).update(
        properties_sealed=None, external_id=None, item_id=None
    )


# --------------------------------------------------------------------- source records


async def source_records_due(cutoff: datetime, after: str | None, limit: int) -> list[Candidate]:
    """Source records collected before ``cutoff``."""
    records = DatedRows(SourceRecord, "collected_at", customer_field="customer_id")
    return await due_rows(records, cutoff, after, limit)


async def source_record_records(
    vault: Vault, ids: list[str]
) -> list[tuple[uuid.UUID, dict[str, Any]]]:
    """The source records, decrypted, as (customer, record) for an archive."""
    rows = await SourceRecord.filter(id__in=[uuid.UUID(i) for i in ids]).order_by("id")
    owners: list[uuid.UUID] = [r.customer_id for r in rows]  # type: ignore[attr-defined]
    keys = await vault.customer_keys(owners)
    return [
        (owner, {"id": str(row.id), **rights.source_record_json(vault, keys.get(owner), row)})
        for owner, row in zip(owners, rows, strict=True)
    ]


async def delete_source_records(ids: list[str]) -> int:
    """Delete source records by id (the profile keeps its values and their lineage)."""
    return await delete_rows(SourceRecord, ids)


# ------------------------------------------------------------------ inactive customers


def _inactive(cutoff: datetime) -> Q:
    """Customers not erased nor merged into another, with no update and no activity since
    before ``cutoff``."""
    return Q(updated_at__lt=cutoff, erased_at__isnull=True, merged_into_id__isnull=True) & (
        Q(last_activity_at__isnull=True) | Q(last_activity_at__lt=cutoff)
    )


async def inactive_customers_due(
    cutoff: datetime, after: str | None, limit: int
) -> list[Candidate]:
    """Customers with no activity and no update since before ``cutoff``."""
    rows = (
        await Customer.filter(_inactive(cutoff), Q(id__gt=uuid.UUID(after)) if after else Q())
        .order_by("id")
        .limit(limit)
        .values("id", "updated_at", "last_activity_at")
    )
    return [
        Candidate(
            id=str(row["id"]),
            customer_id=row["id"],
            at=max(row["updated_at"], row["last_activity_at"] or row["updated_at"]),
        )
        for row in rows
    ]


async def lock_inactive(ids: list[str], cutoff: datetime) -> list[str]:
    """Lock these customers until the transaction ends; the ids of those still inactive."""
    if not ids:
        return []
    rows = (
        await Customer.filter(_inactive(cutoff), id__in=[uuid.UUID(i) for i in ids])
        .order_by("id")
        .select_for_update()
        .values_list("id", flat=True)
    )
    return [str(row) for row in rows]


async def delete_customers(vault: Vault, ids: list[str], keep: rights.Keep) -> int:
    """Crypto-shred and delete whole customers (what ``keep`` names stays, restricted)."""
    for text in ids:
        customer_id = uuid.UUID(text)
        await rights.keep_readable(vault, customer_id, keep)
        await _drop_redirects(customer_id)
        await vault.shred(customer_id)
        await rights.erase(customer_id, keep)
    return len(ids)


async def _drop_redirects(customer_id: uuid.UUID) -> None:
    """The profiles merged into the customer go: they only redirect to it (the candidates and
    merges naming them were forgotten first, see :mod:`cdlm.retention.customer_disposal`)."""
    await Customer.filter(merged_into_id=customer_id).delete()


async def anonymize_customers(vault: Vault, ids: list[str], keep: rights.Keep) -> int:
    """Keep the customers as non-personal records (lifecycle, scores, events' type, time and
    amount) and destroy everything that identifies them; what ``keep`` names (a legal hold)
    stays readable under a key of its own, restricted."""
    for text in ids:
        customer_id = uuid.UUID(text)
        await rights.keep_readable(vault, customer_id, keep)
        await _drop_redirects(customer_id)
        await vault.shred(customer_id)
        await identity.forget_customer(customer_id)
        if not keep.source_records:
            await SourceRecord.filter(customer_id=customer_id).delete()
        await refused_values.forget(customer_id)
        if not keep.all_events:
            events = Event.filter(customer_id=customer_id)
            if keep.event_types:
                events = events.exclude(type__in=list(keep.event_types))
            await events.update(properties_sealed=None, external_id=None)
        await rights.erase_profile(customer_id, restrict=keep.anything)
    return len(ids)


async def crypto_shred_customers(vault: Vault, ids: list[str], keep: rights.Keep) -> int:
    """Destroy the customers' keys: their rows stay, unreadable, restricted, and match
    nothing (identities and events' source ids go); what ``keep`` names stays readable
    under a key of its own."""
    for text in ids:
        customer_id = uuid.UUID(text)
        await rights.keep_readable(vault, customer_id, keep)
        await _drop_redirects(customer_id)
        await vault.shred(customer_id)
        await identity.forget_customer(customer_id)
        await Event.filter(customer_id=customer_id).update(external_id=None)
        await attributes.forget([customer_id])
        now = clock.now()
        await Customer.filter(id=customer_id).update(erased_at=now, restricted_at=now)
    return len(ids)
