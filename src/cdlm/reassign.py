"""Moving a customer's rows to another customer, re-sealing what is sealed on the way.

Merge and unmerge move source records, events, identities and refused values between
profiles. Each value sealed under the old owner's key (with the old owner's id in its
associated data) is opened in memory and sealed again for the new owner, in the same statement
that changes its owner, so a row never belongs to one customer while sealed for another.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.connection import get_connection

from cdlm.vault.service import Owner, Vault


@dataclass(frozen=True)
class SealedColumn:
    """A column sealed per row, and the purpose it was sealed for (from the row's columns)."""

    column: str
    purpose: Callable[[Mapping[str, Any]], str]
    purpose_columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Table:
    """A table of rows owned by a customer through ``owner_column``."""

    name: str
    owner_column: str = "customer_id"
    sealed: SealedColumn | None = None


async def reassign(
    vault: Vault,
    table: Table,
    source: Owner,
    target: Owner,
    *,
    ids: Sequence[uuid.UUID] | None = None,
    condition: str = "TRUE",
) -> list[uuid.UUID]:
    """Give ``target`` the rows of ``source`` in ``table`` (only ``ids``, when given, and only
    those meeting the SQL ``condition``); returns the ids moved. Call inside a transaction."""
    client = get_connection("default")
    owner = f'"{table.owner_column}"'
    wanted = '($2::uuid[] IS NULL OR "id" = ANY($2::uuid[]))'
    arguments: list[Any] = [source.id, list(ids) if ids is not None else None]
    if table.sealed is None:
        rows = await client.execute_query_dict(
            f'UPDATE "{table.name}" SET {owner} = $3 '  # noqa: S608 (names are constants)
            f'WHERE {owner} = $1 AND {wanted} AND ({condition}) RETURNING "id"',
            [*arguments, target.id],
        )
        return [row["id"] for row in rows]
    sealed = table.sealed
    columns = ", ".join(f'"{c}"' for c in ("id", sealed.column, *sealed.purpose_columns))
    rows = await client.execute_query_dict(
        f'SELECT {columns} FROM "{table.name}" '  # noqa: S608 (names are constants)
        f'WHERE {owner} = $1 AND {wanted} AND ({condition}) ORDER BY "id" FOR UPDATE',
        arguments,
    )
    if not rows:
        return []
    moved = [row["id"] for row in rows]
    resealed = [
        None
        if row[sealed.column] is None
        else vault.reseal(bytes(row[sealed.column]), sealed.purpose(row), source, target)
        for row in rows
    ]
    await client.execute_query(
        f'UPDATE "{table.name}" AS t SET {owner} = $1, "{sealed.column}" = u.sealed '  # noqa: S608
        'FROM unnest($2::uuid[], $3::bytea[]) AS u(id, sealed) WHERE t."id" = u.id',
        [target.id, moved, resealed],
    )
    return moved
