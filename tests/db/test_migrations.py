"""Migrations: models and migration files agree; applying is idempotent and serialized."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from cdlm.config import DatabaseTarget
from cdlm.db.errors import DatabaseUnavailable
from cdlm.db.lifecycle import (
    apply_migrations,
    connect,
    drop_database,
    ensure_database,
    migration_status,
    server_version,
)
from cdlm.db.schema_changes import pending_model_changes


async def test_every_model_change_has_a_migration() -> None:
    writers = await pending_model_changes()
    assert [w.name for w in writers] == [], "run `cdlm makemigrations` and commit the file"


async def test_session_database_is_fully_migrated(owner_database: DatabaseTarget) -> None:
    status = await migration_status(owner_database)
    assert "0001_initial" in status.applied
    assert status.pending == []
    assert await apply_migrations(owner_database) == []


async def test_concurrent_migrations_on_a_new_database_apply_once(
    database_server: DatabaseTarget,
) -> None:
    target = database_server.with_database(f"cdlm_mig_{uuid.uuid4().hex[:10]}")
    assert await ensure_database(target) is True
    assert await ensure_database(target) is False
    try:
        first, second = await asyncio.gather(apply_migrations(target), apply_migrations(target))
        assert sorted([first, second], key=len) == [[], (await migration_status(target)).applied]
        connection = await connect(target)
        try:
            tables = await connection.fetchval(
                "SELECT count(*) FROM information_schema.tables WHERE table_name = 'installation'"
            )
        finally:
            await connection.close()
        assert tables == 1
    finally:
        await drop_database(target)


async def test_unreachable_database_is_one_clear_message() -> None:
    target = DatabaseTarget("127.0.0.1", 1, "app", "s3cret", "cdlm")
    with pytest.raises(DatabaseUnavailable) as caught:
        await server_version(target, timeout=2)
    assert str(caught.value) == (
        "cannot reach the database app@127.0.0.1:1/cdlm: connection refused"
    )


async def test_missing_database_is_named(database_server: DatabaseTarget) -> None:
    target = database_server.with_database("cdlm_does_not_exist")
    with pytest.raises(DatabaseUnavailable, match="the database does not exist"):
        await server_version(target)
