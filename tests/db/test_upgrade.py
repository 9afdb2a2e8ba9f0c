"""Upgrading a database that holds data: every migration since 0011 applies to rows written
under the schema before it, and the data migrations do what they say."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from cdlm.config import DatabaseTarget
from cdlm.db.lifecycle import apply_migrations, connect
from tests.support.migrations import database_at

#: The last migration before the upgrade under test.
BEFORE = "0011_sweep_failures_and_closed_requests"
RECEIVED = datetime(2026, 3, 2, 9, tzinfo=UTC)
_FILLERS: dict[str, Any] = {
    "uuid": lambda: uuid.uuid4(),
    "text": lambda: "x",
    "character varying": lambda: "x",
    "timestamp with time zone": lambda: RECEIVED,
    "jsonb": lambda: "{}",
    "json": lambda: "{}",
    "boolean": lambda: False,
    "integer": lambda: 0,
    "bigint": lambda: 0,
    "smallint": lambda: 0,
    "bytea": lambda: b"",
    "numeric": lambda: 0,
    "double precision": lambda: 0.0,
}


async def _insert(connection: asyncpg.Connection, table: str, **given: Any) -> None:
    """A row with ``given`` values and a filler in every other required column."""
    columns = await connection.fetch(
        "SELECT column_name, data_type, is_nullable, column_default FROM "
        "information_schema.columns WHERE table_name = $1",
        table,
    )
    values = dict(given)
    for column in columns:
        name = column["column_name"]
        if name in values or column["is_nullable"] == "YES" or column["column_default"]:
            continue
        values[name] = _FILLERS[column["data_type"]]()
    names = ", ".join(f'"{n}"' for n in values)
    marks = ", ".join(
        f"${i}::jsonb" if isinstance(v, str) and v[:1] in "[{" else f"${i}"
        for i, v in enumerate(values.values(), 1)
    )
    await connection.execute(
        f'INSERT INTO "{table}" ({names}) VALUES ({marks})',
        *values.values(),
    )


@pytest.fixture
async def old_database(database_server: DatabaseTarget) -> AsyncIterator[DatabaseTarget]:
    async with database_at(database_server, BEFORE, "cdlm_upgrade") as target:
        yield target


async def test_an_upgrade_with_data_in_every_changed_table(old_database: DatabaseTarget) -> None:
    connection = await connect(old_database)
    paused = '[["2026-03-02T09:00:00+00:00", "2026-03-09T09:00:00+00:00"]]'
    waiting = '[["2026-03-02T09:00:00+00:00", null]]'
    requests = {name: uuid.uuid4() for name in ("ccpa", "gdpr", "denied")}
    try:
        for name, jurisdiction, status, pauses, rule in (
            ("ccpa", "ccpa", "verified", paused, '{"months": 0, "days": 45, '
             '"extension_months": 0, "extension_days": 45, "acknowledge_business_days": 10}'),
            ("gdpr", "gdpr", "identity_pending", waiting, '{"months": 1, "days": 0, '
             '"extension_months": 2, "extension_days": 0, "acknowledge_business_days": null}'),
            ("denied", "gdpr", "denied", "[]", '{"months": 1, "days": 0, '
             '"extension_months": 2, "extension_days": 0, "acknowledge_business_days": null}'),
        ):  # fmt: skip
            await _insert(
                connection,
                "dsr_requests",
                id=requests[name],
                jurisdiction=jurisdiction,
                status=status,
                type="access",
                pauses=pauses,
                clock_rule=rule,
                received_at=RECEIVED,
                due_at=RECEIVED + timedelta(days=52),
                reason="Unfounded, as Ms Applebaum explained." if name == "denied" else None,
            )
        await _insert(connection, "idempotency_records", scope="s", key="ada@example.com")
        await _insert(connection, "purposes", id=uuid.uuid4(), code="newsletter")
    finally:
        await connection.close()

    applied = await apply_migrations(old_database)
    assert applied[0] == "0012_identity_conflicts"

    connection = await connect(old_database)
    try:
        rows = {
            r["id"]: r
            for r in await connection.fetch(
                "SELECT id, pauses, due_at, clock_paused, clock_rule, reason FROM dsr_requests"
            )
        }
        assert rows[requests["ccpa"]]["due_at"] == RECEIVED + timedelta(days=45)
        assert rows[requests["ccpa"]]["pauses"] == "[]"
        assert rows[requests["gdpr"]]["clock_paused"] is True
        assert '"pause_while_waiting": false' in rows[requests["ccpa"]]["clock_rule"]
        assert '"pause_while_waiting": true' in rows[requests["gdpr"]]["clock_rule"]
        # Staff text stays where it was until the tick seals it under the request's key.
        assert rows[requests["denied"]]["reason"] == "Unfounded, as Ms Applebaum explained."
        assert await connection.fetchval("SELECT count(*) FROM idempotency_records") == 0
        assert await connection.fetchval("SELECT recipients::text FROM purposes") == "[]"
    finally:
        await connection.close()
