"""A database migrated up to a given migration, for tests of the upgrade that follows it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from tortoise.migrations.executor import MigrationTarget

from cdlm.config import DatabaseTarget
from cdlm.db import lifecycle
from cdlm.db.lifecycle import drop_database, ensure_database
from cdlm.db.orm_config import APP_LABEL


@asynccontextmanager
async def database_at(
    server: DatabaseTarget, migration: str, prefix: str
) -> AsyncIterator[DatabaseTarget]:
    """A new database named ``<prefix>_<random>`` on ``server``, migrated up to ``migration``
    (included); dropped afterwards."""
    target = server.with_database(f"{prefix}_{uuid.uuid4().hex[:10]}")
    await ensure_database(target)
    try:
        async with lifecycle._migration_context(target) as executor:
            await executor.migrate(targets=[MigrationTarget(app_label=APP_LABEL, name=migration)])
        yield target
    finally:
        await drop_database(target)
