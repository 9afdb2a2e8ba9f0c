"""Least privilege on real PostgreSQL: the application role (what the app, its commands and
this suite's app connect as) may read and write the ordinary tables and append to the ledgers,
and nothing else: no DDL, no TRUNCATE, no trigger switching, no rewriting the ledgers."""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

import asyncpg
import pytest
from tortoise.connection import get_connection
from tortoise.exceptions import OperationalError

from cdlm.config import DatabaseTarget
from cdlm.db import migrations
from tests.conftest import APP_ROLE

#: Append-only tables: read and append, nothing more (the audit inbox also lets chained rows go).
LEDGERS = {
    "audit_entries": {"SELECT", "INSERT"},
    "consent_entries": {"SELECT", "INSERT"},
    "audit_pending": {"SELECT", "INSERT", "DELETE"},
    "ledger_checkpoints": {"SELECT", "INSERT"},
    "tortoise_migrations": {"SELECT"},
    # Written by the trigger on events only.
    "event_keys": {"SELECT"},
}
ORDINARY = {"SELECT", "INSERT", "UPDATE", "DELETE"}
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")

REFUSAL = r"permission denied|must be owner|must be superuser"
REFUSED = [
    "ALTER TABLE audit_entries ADD COLUMN forged text",
    "ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only",
    "ALTER TABLE consent_entries DISABLE TRIGGER consent_entries_append_only",
    "ALTER TABLE audit_pending DISABLE TRIGGER ALL",
    "ALTER TABLE consent_entries OWNER TO cdlm_app",
    "TRUNCATE audit_entries",
    "TRUNCATE consent_entries",
    "TRUNCATE audit_pending",
    "TRUNCATE customers CASCADE",
    "UPDATE audit_entries SET action = 'x'",
    "DELETE FROM audit_entries",
    "UPDATE consent_entries SET decision = 'granted'",
    "DELETE FROM consent_entries",
    "UPDATE audit_pending SET action = 'x'",
    "UPDATE ledger_checkpoints SET hash = 'x'",
    "DELETE FROM ledger_checkpoints",
    "TRUNCATE ledger_checkpoints",
    "INSERT INTO tortoise_migrations (app, name, applied_at) VALUES ('cdlm', 'x', now())",
    "DELETE FROM tortoise_migrations",
    "CREATE TABLE forged (v int)",
    "CREATE FUNCTION forged() RETURNS int AS 'SELECT 1' LANGUAGE sql",
    "DROP TABLE audit_entries",
    "DROP TABLE customers CASCADE",
    "DROP TRIGGER audit_entries_append_only ON audit_entries",
    "CREATE OR REPLACE FUNCTION cdlm_audit_append_only() RETURNS trigger "
    "AS $$ BEGIN RETURN OLD; END $$ LANGUAGE plpgsql",
    "SET session_replication_role = replica",
    "TRUNCATE events",
    "ALTER TABLE events DETACH PARTITION events_default",
    "ALTER TABLE events DISABLE TRIGGER event_keys_added",
    "DROP TABLE events_default",
    "DELETE FROM event_keys",
    "INSERT INTO event_keys VALUES (gen_random_uuid(), 'shop', 'forged')",
    "CREATE OR REPLACE FUNCTION cdlm_event_keys() RETURNS trigger "
    "AS $$ BEGIN RETURN NULL; END $$ LANGUAGE plpgsql",
    "SELECT cdlm_event_keys()",
    "ALTER ROLE cdlm_app SUPERUSER",
]


@pytest.mark.parametrize("statement", REFUSED)
async def test_the_application_role_is_refused(statement: str) -> None:
    with pytest.raises(
        OperationalError, match=r"permission denied|must be owner|must be superuser"
    ):
        await get_connection("default").execute_script(statement)


async def test_the_application_role_cannot_become_the_owner(owner_database: DatabaseTarget) -> None:
    connection = get_connection("default")
    with pytest.raises(OperationalError, match="permission denied to set role"):
        await connection.execute_script(f'SET ROLE "{owner_database.user}"')
    with pytest.raises(OperationalError, match="permission denied to set session authorization"):
        await connection.execute_script(f'SET SESSION AUTHORIZATION "{owner_database.user}"')
    row = await connection.execute_query_dict(
        "SELECT current_user AS who, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls "
        "FROM pg_roles WHERE rolname = current_user"
    )
    assert row == [
        {
            "who": APP_ROLE,
            "rolsuper": False,
            "rolcreaterole": False,
            "rolcreatedb": False,
            "rolbypassrls": False,
        }
    ]


async def _privileges(role: str) -> dict[str, set[str]]:
    """Every table of the schema public and the privileges ``role`` holds on it."""
    rows = await get_connection("default").execute_query_dict(
        "SELECT c.relname AS name, p.privilege FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public' "
        "CROSS JOIN unnest($2::text[]) AS p(privilege) "
        "WHERE c.relkind IN ('r', 'p') AND has_table_privilege($1, c.oid, p.privilege)",
        [role, list(PRIVILEGES)],
    )
    tables = await get_connection("default").execute_query_dict(
        "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
    )
    held: dict[str, set[str]] = {row["name"]: set() for row in tables}
    for row in rows:
        held[row["name"]].add(row["privilege"])
    return held


async def test_the_application_role_holds_exactly_its_grants() -> None:
    held = await _privileges(APP_ROLE)
    assert {"customers", "events", "audit_entries", "consent_entries"} <= set(held)
    expected = {name: LEDGERS.get(name, ORDINARY) for name in held}
    assert held == expected
    owned = await get_connection("default").execute_query_dict(
        "SELECT count(*) AS n FROM pg_class WHERE relowner = "
        "(SELECT oid FROM pg_roles WHERE rolname = current_user)"
    )
    assert owned == [{"n": 0}]
    sequences = await get_connection("default").execute_query_dict(
        "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND c.relkind = 'S' "
        "AND NOT has_sequence_privilege(current_user, c.oid, 'USAGE')"
    )
    assert sequences == []


async def test_tables_the_owner_adds_later_are_the_applications_to_use(
    owner: asyncpg.Connection,
) -> None:
    await owner.execute("CREATE TABLE later_table (id bigint GENERATED ALWAYS AS IDENTITY, v int)")
    try:
        connection = get_connection("default")
        await connection.execute_script("INSERT INTO later_table (v) VALUES (1), (2)")
        await connection.execute_script("UPDATE later_table SET v = v + 10 WHERE v = 1")
        await connection.execute_script("DELETE FROM later_table WHERE v = 2")
        rows = await connection.execute_query_dict("SELECT id, v FROM later_table")
        assert rows == [{"id": 1, "v": 11}]
        with pytest.raises(OperationalError, match="must be owner"):
            await connection.execute_script("ALTER TABLE later_table ADD COLUMN w int")
    finally:
        await owner.execute("DROP TABLE later_table")


def _grant_sql() -> str:
    """The migration's grants, as ``cdlm migrate`` runs them."""
    folder = Path(migrations.__file__).parent
    (name,) = [path.stem for path in folder.glob("[0-9]*_database_roles.py")]
    module = import_module(f"{migrations.__name__}.{name}")
    sql: str = module.GRANT_APP_ROLE
    return sql


async def _grant(owner: asyncpg.Connection, role: str) -> None:
    async with owner.transaction():
        await owner.execute("SELECT set_config('cdlm.app_role', $1, true)", role)
        await owner.execute(_grant_sql())


async def test_granting_again_changes_nothing(owner: asyncpg.Connection) -> None:
    before = await _privileges(APP_ROLE)
    await _grant(owner, APP_ROLE)
    assert await _privileges(APP_ROLE) == before


async def test_a_privileged_application_role_is_refused(
    owner: asyncpg.Connection, owner_database: DatabaseTarget
) -> None:
    """Naming the owner (or a superuser) as the application role would hand it everything."""
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="may not be a superuser"):
        await _grant(owner, owner_database.user)
