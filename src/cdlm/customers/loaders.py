"""DataLoader batch functions of the customer 360 (one query per relation per request)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import TYPE_CHECKING

from cdlm.customers.models import Customer, CustomerAttributes, SourceRecord
from cdlm.quality import refused
from cdlm.vault.service import Vault

if TYPE_CHECKING:
    from cdlm.quality.models import InvalidValue


async def data_keys_by_customer(vault: Vault, ids: list[uuid.UUID]) -> list[bytes | None]:
    """Each customer's data key (None once crypto-shredded)."""
    keys = await vault.customer_keys(ids)
    return [keys.get(customer_id) for customer_id in ids]


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


async def attributes_by_customer(ids: list[uuid.UUID]) -> list[CustomerAttributes | None]:
    """Each customer's analysis attributes (None before the first derivation)."""
    rows = {row.customer_id: row for row in await CustomerAttributes.filter(customer_id__in=ids)}  # type: ignore[attr-defined]
    return [rows.get(customer_id) for customer_id in ids]
