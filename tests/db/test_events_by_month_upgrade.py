"""Upgrading a database that holds events to monthly partitions: every row lands in its month
(or the default partition), keeps its key, and the keys stay unique; undoing it gives the
table back as it was."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from tortoise.migrations.executor import MigrationTarget

from cdlm.config import DatabaseTarget
from cdlm.db import lifecycle
from cdlm.db.lifecycle import apply_migrations, connect
from cdlm.db.orm_config import APP_LABEL
from tests.support.migrations import database_at

BEFORE = "0030_ledger_keys_and_checkpoints"
MOMENTS = [
    datetime(2024, 1, 31, 23, 59, 59, tzinfo=UTC),  # the last second of January, UTC
    datetime(2024, 2, 1, 0, 0, tzinfo=UTC),  # the first of February
    datetime(2024, 2, 14, 12, tzinfo=UTC),
    datetime(1990, 5, 5, tzinfo=UTC),
]


@pytest.fixture
async def old_database(database_server: DatabaseTarget) -> AsyncIterator[DatabaseTarget]:
    async with database_at(database_server, BEFORE, "cdlm_months") as target:
        yield target


INSERT_EVENT = (
    "INSERT INTO events (id, customer_id, type, channel, occurred_at, received_at, "
    "source_system, external_id, amount, currency) "
    "VALUES ($1, $2, 'purchase', 'web', $3, $3, 'shop', $4, 9.99, 'EUR')"
)


async def _customer(connection: asyncpg.Connection) -> uuid.UUID:
    customer_id = uuid.uuid4()
    await connection.execute(
        "INSERT INTO customers (id, created_at, updated_at, lifecycle_stage, profile_sealed, "
        "present_fields, lineage, source_systems, completeness, validity, quality_score) "
        "VALUES ($1, now(), now(), 'customer', '\\x00'::bytea, '[]', '{}', '[]', 0, 1, 0)",
        customer_id,
    )
    return customer_id


async def test_events_move_into_their_months_with_their_keys(old_database: DatabaseTarget) -> None:
    connection = await connect(old_database)
    try:
        customer_id = await _customer(connection)
        ids = [uuid.uuid4() for _ in MOMENTS]
        for n, (event_id, at) in enumerate(zip(ids, MOMENTS, strict=True)):
            await connection.execute(
                INSERT_EVENT, event_id, customer_id, at, f"o-{n}" if n != 2 else None
            )
    finally:
        await connection.close()

    applied = await apply_migrations(old_database)
    assert applied[0] == "0031_events_by_month"

    connection = await connect(old_database)
    try:
        homes = {
            row["id"]: row["home"]
            for row in await connection.fetch(
                "SELECT id, tableoid::regclass::text AS home FROM events"
            )
        }
        assert homes == {
            ids[0]: "events_2024_01",
            ids[1]: "events_2024_02",
            ids[2]: "events_2024_02",
            ids[3]: "events_1990_05",
        }
        keys = {
            r["external_id"]: r["event_id"]
            for r in await connection.fetch("SELECT * FROM event_keys")
        }
        assert keys == {"o-0": ids[0], "o-1": ids[1], "o-3": ids[3]}
        amount = await connection.fetchval("SELECT amount FROM events WHERE id = $1", ids[0])
        assert str(amount) == "9.99"
        # The months made ahead exist, and the application role may use every month.
        months = await connection.fetchval(
            "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events'::regclass"
        )
        assert months >= 3 + 4 + 1  # the months with events, this one and 3 ahead, default
        assert await connection.fetchval(
            "SELECT bool_and(has_table_privilege('cdlm_app', inhrelid, 'SELECT, INSERT, "
            "UPDATE, DELETE')) FROM pg_inherits WHERE inhparent = 'events'::regclass"
        )
        # The old unique constraint's meaning, across months now.
        with pytest.raises(asyncpg.UniqueViolationError, match="uid_event_keys"):
            await connection.execute(INSERT_EVENT, uuid.uuid4(), customer_id, MOMENTS[2], "o-0")
        with pytest.raises(asyncpg.UniqueViolationError, match="id_occurred_at"):
            await connection.execute(INSERT_EVENT, ids[2], customer_id, MOMENTS[2], None)
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await connection.execute(INSERT_EVENT, uuid.uuid4(), uuid.uuid4(), MOMENTS[2], None)
    finally:
        await connection.close()

    async with lifecycle._migration_context(old_database) as executor:
        await executor.migrate(targets=[MigrationTarget(app_label=APP_LABEL, name=BEFORE)])
    connection = await connect(old_database)
    try:
        kind = await connection.fetchval(
            "SELECT relkind::text FROM pg_class WHERE relname = 'events'"
        )
        assert kind == "r"
        assert await connection.fetchval("SELECT count(*) FROM events") == len(MOMENTS)
        assert await connection.fetchval("SELECT to_regclass('event_keys')") is None
        with pytest.raises(asyncpg.UniqueViolationError):
            await connection.execute(INSERT_EVENT, uuid.uuid4(), customer_id, MOMENTS[2], "o-0")
    finally:
        await connection.close()
