"""Shared shapes of retention disposal: what is due, found in bounded, resumable pages.

Each domain says which of its rows are due (their ids, owner and the time the period counts
from) and how to dispose of them; the retention sweep decides what, when and with which
evidence. Pages are taken in id order after a cursor, so an interrupted sweep resumes exactly.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.expressions import Q
from tortoise.models import Model


@dataclass(frozen=True)
class Candidate:
    """One row whose retention period has passed."""

    id: str
    customer_id: uuid.UUID | None
    at: datetime
    kind: str = ""  # e.g. the event type, for holds on a sub-category


def cursor_filter(after: str | None, id_type: type = uuid.UUID) -> Q:
    """Rows after ``after`` in id order (everything when None)."""
    if after is None:
        return Q()
    return Q(id__gt=id_type(after))


@dataclass(frozen=True)
class DatedRows:
    """Where a kind of row lives and how it ages: the table, the time its period counts from,
    and what a candidate names of it (owner, sub-category), among the rows ``where`` keeps."""

    model: type[Model]
    time_field: str
    customer_field: str | None = None
    kind_field: str | None = None
    where: Q | None = None
    id_type: type = uuid.UUID


async def due_rows(
    rows: DatedRows, cutoff: datetime, after: str | None, limit: int
) -> list[Candidate]:
    """Up to ``limit`` of ``rows`` whose time is before ``cutoff``, in id order after
    ``after``."""
    time_field, customer_field, kind_field = rows.time_field, rows.customer_field, rows.kind_field
    before: dict[str, Any] = {f"{time_field}__lt": cutoff}
    query = rows.model.filter(**before).filter(cursor_filter(after, rows.id_type))
    if rows.where is not None:
        query = query.filter(rows.where)
    fields = ["id", time_field] + [f for f in (customer_field, kind_field) if f]
    found: list[dict[str, Any]] = await query.order_by("id").limit(limit).values(*fields)
    return [
        Candidate(
            id=str(row["id"]),
            customer_id=row[customer_field] if customer_field else None,
            at=row[time_field],
            kind=str(row[kind_field]) if kind_field else "",
        )
        for row in found
    ]


async def delete_rows(model: type[Model], ids: list[str], id_type: type = uuid.UUID) -> int:
    """Delete rows of ``model`` by id."""
    if not ids:
        return 0
    return await model.filter(id__in=[id_type(i) for i in ids]).delete()
