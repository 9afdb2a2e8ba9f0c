"""DataLoader batch functions of the customer 360 (one query per relation per request)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tortoise.connection import get_connection

from cdlm.customers.models import Customer, SourceRecord
from cdlm.identity import service as identity
from cdlm.quality import refused
from cdlm.vault.service import Vault

if TYPE_CHECKING:
    from cdlm.identity.models import Identity
    from cdlm.quality.models import InvalidValue


async def data_keys_by_customer(vault: Vault, ids: list[uuid.UUID]) -> list[bytes | None]:
    """Each customer's data key (None once crypto-shredded)."""
    keys = await vault.customer_keys(ids)
    return [keys.get(customer_id) for customer_id in ids]


async def identities_by_customer(ids: list[uuid.UUID]) -> list[list[Identity]]:
    """Each customer's identities, strongest kind first."""
    grouped = await identity.of_customers(list(set(ids)))
    return [grouped[customer_id] for customer_id in ids]


async def invalid_values_by_customer(ids: list[uuid.UUID]) -> list[list[InvalidValue]]:
    """Each customer's refused values that no valid value has replaced yet."""
    grouped = await refused.open_values(list(set(ids)))
    return [grouped[customer_id] for customer_id in ids]


async def source_records_by_customer(ids: list[uuid.UUID]) -> list[list[SourceRecord]]:
    """Each customer's source records, newest first."""
    grouped: dict[uuid.UUID, list[SourceRecord]] = defaultdict(list)
    for row in await SourceRecord.filter(customer_id__in=ids).order_by("-received_at"):
        grouped[row.customer_id].append(row)  # type: ignore[attr-defined]
    return [grouped[customer_id] for customer_id in ids]


@dataclass(frozen=True)
class EventWindow:
    """One page of a customer's events: newest first, optionally filtered."""

    first: int
    after: tuple[datetime, uuid.UUID] | None = None
    type: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None


async def events_by_customer(
    keys: list[tuple[uuid.UUID, EventWindow]],
) -> list[list[dict[str, Any]]]:
    """``first + 1`` events per (customer, window): one query per distinct window."""
    by_window: dict[EventWindow, list[uuid.UUID]] = defaultdict(list)
    for customer_id, window in keys:
        by_window[window].append(customer_id)
    found: dict[tuple[uuid.UUID, EventWindow], list[dict[str, Any]]] = defaultdict(list)
    for window, customer_ids in by_window.items():
        conditions = ['"customer_id" = ANY($1::uuid[])']
        values: list[Any] = [list(set(customer_ids))]
        if window.type is not None:
            values.append(window.type)
            conditions.append(f'"type" = ${len(values)}')
        if window.occurred_from is not None:
            values.append(window.occurred_from)
            conditions.append(f'"occurred_at" >= ${len(values)}')
        if window.occurred_to is not None:
            values.append(window.occurred_to)
            conditions.append(f'"occurred_at" < ${len(values)}')
        if window.after is not None:
            values.extend(window.after)
            conditions.append(f'("occurred_at", "id") < (${len(values) - 1}, ${len(values)})')
        values.append(window.first + 1)
        # Only fixed column conditions are joined in; every value is a bind parameter.
        sql = (
            'SELECT * FROM (SELECT "id", "customer_id", "type", "channel", "occurred_at", '  # noqa: S608
            '"received_at", "amount", "currency", "properties_sealed", "source_system", '
            '"external_id", row_number() OVER (PARTITION BY "customer_id" '
            'ORDER BY "occurred_at" DESC, "id" DESC) AS "position" FROM "events" WHERE '
            + " AND ".join(conditions)
            + f') AS ranked WHERE "position" <= ${len(values)} ORDER BY "customer_id", "position"'
        )
        for row in await get_connection("default").execute_query_dict(sql, values):
            found[(row["customer_id"], window)].append(row)
    return [found[key] for key in keys]


async def customers_by_id(ids: list[uuid.UUID]) -> list[Customer | None]:
    """Each customer (None when erased or unknown; a merged id gives its survivor)."""
    rows = {
        row.id: row for row in await Customer.filter(id__in=list(set(ids)), erased_at__isnull=True)
    }
    survivors = {r.merged_into_id for r in rows.values() if r.merged_into_id is not None}
    missing = [s for s in survivors if s not in rows]
    if missing:
        for row in await Customer.filter(id__in=missing, erased_at__isnull=True):
            rows[row.id] = row
    found: list[Customer | None] = []
    for customer_id in ids:
        asked = rows.get(customer_id)
        if asked is not None and asked.merged_into_id is not None:
            found.append(rows.get(asked.merged_into_id))
        else:
            found.append(asked)
    return found


async def absorbed_by_customer(ids: list[uuid.UUID]) -> list[list[uuid.UUID]]:
    """The profiles merged into each customer (and not unmerged)."""
    grouped: dict[uuid.UUID, list[uuid.UUID]] = {i: [] for i in ids}
    rows = (
        await Customer.filter(merged_into_id__in=list(set(ids)))
        .order_by("id")
        .values_list("id", "merged_into_id")
    )
    for merged, survivor in rows:
        grouped[uuid.UUID(str(survivor))].append(uuid.UUID(str(merged)))
    return [grouped[i] for i in ids]
