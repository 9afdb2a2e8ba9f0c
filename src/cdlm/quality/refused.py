"""Refused values: stored (sealed) with their reasons, resolved when valid values arrive."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from datetime import datetime

from tortoise.connection import get_connection
from tortoise.queryset import QuerySet

from cdlm.quality.models import InvalidValue
from cdlm.reassign import SealedColumn, Table
from cdlm.vault import purposes as sealed_for

#: Refused values, as a merge moves them (each sealed for its field).
TABLE = Table(
    "invalid_values",
    sealed=SealedColumn(
        "value_sealed", lambda row: sealed_for.invalid_value(row["field"]), ("field",)
    ),
)


def refused_value(
    customer_id: uuid.UUID,
    source_record_id: uuid.UUID | None,
    field: str,
    code: str,
    message: str,
    sealed_value: bytes,
    now: datetime,
) -> InvalidValue:
    """A new (unsaved) refused value; save many at once with :func:`save`."""
    return InvalidValue(
        id=uuid.uuid4(),
        customer_id=customer_id,
        source_record_id=source_record_id,
        field=field,
        code=code,
        message=message,
        value_sealed=sealed_value,
        created_at=now,
    )


async def save(rows: list[InvalidValue]) -> None:
    """Insert refused values with one statement."""
    if rows:
        await InvalidValue.bulk_create(rows)


async def resolve(pairs: list[tuple[uuid.UUID, str]], now: datetime) -> None:
    """Mark the open refused values of these (customer, field) pairs resolved."""
    if pairs:
        await get_connection("default").execute_query(
            'UPDATE "invalid_values" SET "resolved_at" = $1 WHERE "resolved_at" IS NULL AND '
            '("customer_id", "field") IN (SELECT * FROM unnest($2::uuid[], $3::text[]))',
            [now, [c for c, _ in pairs], [f for _, f in pairs]],
        )


async def open_fields(customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    """Fields whose latest refused values no valid value has replaced yet (one query)."""
    found: dict[uuid.UUID, set[str]] = {c: set() for c in customer_ids}
    if customer_ids:
        rows = await InvalidValue.filter(
            customer_id__in=customer_ids, resolved_at__isnull=True
        ).values_list("customer_id", "field")
        for customer_id, name in rows:
            found[customer_id].add(str(name))
    return found


async def open_values(customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[InvalidValue]]:
    """Each customer's open refused values, newest first (one query)."""
    grouped: dict[uuid.UUID, list[InvalidValue]] = {c: [] for c in customer_ids}
    rows = await InvalidValue.filter(
        customer_id__in=customer_ids, resolved_at__isnull=True
    ).order_by("-created_at")
    for row in rows:
        grouped[row.customer_id].append(row)  # type: ignore[attr-defined]
    return grouped


def open_refused(fields: Collection[str]) -> QuerySet[InvalidValue]:
    """Refused values of ``fields`` that no valid value has replaced yet, of customers that
    may be processed (not erased, restricted or merged away): the open data-quality issues
    (paginate it)."""
    return InvalidValue.filter(
        resolved_at__isnull=True,
        field__in=list(fields),
        customer__erased_at__isnull=True,
        customer__restricted_at__isnull=True,
        customer__merged_into_id__isnull=True,
    )


async def of_customer(customer_id: uuid.UUID) -> list[InvalidValue]:
    """Every refused value of a customer, oldest first (for an access request)."""
    return list(await InvalidValue.filter(customer_id=customer_id).order_by("created_at"))


async def forget(customer_id: uuid.UUID) -> int:
    """Delete every refused value of a customer (erasure)."""
    return await InvalidValue.filter(customer_id=customer_id).delete()


async def open_by_source() -> list[tuple[str | None, int]]:
    """Open refused values per source system that sent them (None: not traced to a source
    record), most first; customers left out of aggregates (erased, restricted, merged away)
    are not counted. One query, counts only."""
    rows = await get_connection("default").execute_query_dict(
        'SELECT s."source_system" AS source, count(*) AS n FROM "invalid_values" v '
        'JOIN "customers" c ON c."id" = v."customer_id" '
        'LEFT JOIN "source_records" s ON s."id" = v."source_record_id" '
        'WHERE v."resolved_at" IS NULL AND c."erased_at" IS NULL AND c."restricted_at" IS NULL '
        'AND c."merged_into_id" IS NULL GROUP BY 1 ORDER BY n DESC, 1 NULLS LAST'
    )
    return [(row["source"], int(row["n"])) for row in rows]
