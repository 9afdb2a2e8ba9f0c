"""Every index the models declare exists in a database built by the migrations alone (the
test database also gets ``generate_schemas``, which would hide a missing one)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest
from tortoise import Tortoise

from cdlm.config import DatabaseTarget
from cdlm.db.lifecycle import apply_migrations, connect, drop_database, ensure_database

INDEXED = (
    "SELECT t.relname AS table_name, array_agg(a.attname ORDER BY k.n) AS columns "
    "FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid "
    "JOIN pg_namespace s ON s.oid = t.relnamespace AND s.nspname = current_schema() "
    "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) "
    "JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum "
    "GROUP BY i.indexrelid, t.relname"
)


@pytest.fixture
async def migrated(database_server: DatabaseTarget) -> AsyncIterator[DatabaseTarget]:
    target = database_server.with_database(f"cdlm_indexes_{uuid.uuid4().hex[:10]}")
    await ensure_database(target)
    try:
        await apply_migrations(target)
        yield target
    finally:
        await drop_database(target)


def _declared() -> set[tuple[str, tuple[str, ...]]]:
    assert Tortoise.apps is not None
    declared: set[tuple[str, tuple[str, ...]]] = set()
    for model in Tortoise.apps["cdlm"].values():
        meta = model._meta
        for name, field in meta.fields_map.items():
            if field.index:
                declared.add((meta.db_table, (field.source_field or name,)))
        for together in meta.indexes:
            names = together.fields if hasattr(together, "fields") else together
            declared.add(
                (meta.db_table, tuple(meta.fields_map[n].source_field or n for n in names))
            )
    return declared


async def test_every_declared_index_is_made_by_the_migrations(migrated: DatabaseTarget) -> None:
    connection = await connect(migrated)
    try:
        rows = await connection.fetch(INDEXED)
    finally:
        await connection.close()
    existing = {
        (row["table_name"], tuple(row["columns"])[:length])
        for row in rows
        for length in range(1, len(row["columns"]) + 1)
    }
    declared = _declared()
    assert ("customers", ("merged_into_id",)) in declared
    assert declared - existing == set()
