"""Test infrastructure: one PostgreSQL per session, a clean database per test, app clients.

PostgreSQL is the embedded server (started in a temporary directory) unless ``DATABASE_URL``
is set, in which case a throw-away database is created on that server and dropped at the end.

As in production, the migrations and the test helpers that empty or tamper with tables run as
the owner (``owner_database``, ``owner``); the app under test, its commands and its Lambda
handler connect as the application role (``database``), which may not alter, truncate, or
rewrite the ledgers.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from starlette.applications import Starlette
from tortoise import Tortoise
from tortoise.context import TortoiseContext

from cdlm.app import create_app
from cdlm.auth.settings import AuthSettings, auth_settings
from cdlm.config import DatabaseTarget, Settings, load_settings, parse_database_url
from cdlm.core.roles import Role
from cdlm.db.embedded import EmbeddedPostgres
from cdlm.db.lifecycle import (
    app_role_target,
    apply_migrations,
    close_orm,
    connect,
    drop_database,
    ensure_database,
    init_orm,
)
from cdlm.db.orm_config import tortoise_config
from cdlm.vault.keys import provider_from_settings
from cdlm.vault.service import Vault
from tests.factories import bearer, make_api_key
from tests.support.field_paths import check_field_paths
from tests.support.sql_counter import CountingConnection, StatementRecorder

#: Environment of a test deployment: real argon2id, at a cost that keeps the suite fast.
TEST_ENV = {
    "CDLM_ENV": "test",
    "CDLM_TOKEN_SECRET": "test-token-secret-" + "x" * 32,
    "CDLM_PASSWORD_HASH_TIME_COST": "1",
    "CDLM_PASSWORD_HASH_MEMORY_KIB": "1024",
}
TEST_APPS = {"testsupport": {"models": ["tests.support.models"], "default_connection": "default"}}
#: The application role of the test database (as ``CDLM_DATABASE_APP_ROLE`` names it).
APP_ROLE = "cdlm_app"
#: Its password when the server asks for one (``DATABASE_URL``); the embedded server trusts
#: its Unix socket.
APP_ROLE_PASSWORD = "cdlm-test-" + uuid.uuid4().hex


@pytest.fixture(scope="session")
def database_server() -> Iterator[DatabaseTarget]:
    """Where the session's PostgreSQL listens (database name to be chosen by the caller)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        yield parse_database_url(url)
        return
    workdir = Path(tempfile.mkdtemp(prefix="cdlm-test-"))
    server = EmbeddedPostgres(workdir / "pg", delete_on_stop=True)
    try:
        yield server.start()
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    """A private directory directly under the system temp dir.

    The embedded PostgreSQL runs as its own system user, which must be able to reach its data
    directory; pytest's own temp tree is private to the test runner's user.
    """
    path = Path(tempfile.mkdtemp(prefix="cdlm-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
async def owner_database(database_server: DatabaseTarget) -> AsyncIterator[DatabaseTarget]:
    """A freshly created database for this session, migrated by its owner, dropped at the end."""
    target = database_server.with_database(f"cdlm_test_{uuid.uuid4().hex[:12]}")
    await ensure_database(target)
    await apply_migrations(target, app_role=APP_ROLE)
    try:
        yield target
    finally:
        await drop_database(target)


@pytest.fixture(scope="session")
async def owner(owner_database: DatabaseTarget) -> AsyncIterator[asyncpg.Connection]:
    """A connection as the tables' owner: for emptying tables and for tests that tamper."""
    connection = await connect(owner_database)
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture(scope="session")
async def database(owner_database: DatabaseTarget, owner: asyncpg.Connection) -> DatabaseTarget:
    """The session database as the application role reaches it (what the app connects as)."""
    # The role is the server's, not the database's: a password only a test session knows.
    await owner.execute(f"ALTER ROLE {APP_ROLE} PASSWORD '{APP_ROLE_PASSWORD}'")
    return replace(app_role_target(owner_database, APP_ROLE), password=APP_ROLE_PASSWORD)


@pytest.fixture(scope="session")
def settings(database: DatabaseTarget, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings as a test deployment would have them, pointing at the session database."""
    base = load_settings({**TEST_ENV, "CDLM_DATA_DIR": str(tmp_path_factory.mktemp("data"))})
    return replace(base, database=database, database_app_role=APP_ROLE)


@pytest.fixture(scope="session")
async def orm(
    database: DatabaseTarget, owner_database: DatabaseTarget, settings: Settings
) -> AsyncIterator[None]:
    """Tortoise initialized for the session as the application role, with the test-only tables
    created by the owner (the default privileges grant them to the application role)."""
    async with TortoiseContext() as creating:
        await creating.init(config=tortoise_config(owner_database, extra_apps=TEST_APPS))
        await creating.generate_schemas(safe=True)
    context = await init_orm(
        database, settings, extra_apps=TEST_APPS, connection_class=CountingConnection
    )
    try:
        yield
    finally:
        await close_orm(context)


#: Installation-level state that survives between tests (as it does between requests).
KEPT_TABLES = {"vault_secrets"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test gets a clean database, except those marked ``pure`` (rules tested without
    PostgreSQL: ``pytest -m pure`` runs them and never starts a server)."""
    for item in items:
        if item.get_closest_marker("pure") is None and "clean_database" not in item.fixturenames:
            item.fixturenames.insert(0, "clean_database")  # type: ignore[attr-defined]


@pytest.fixture
async def clean_database(orm: None, owner: asyncpg.Connection) -> AsyncIterator[None]:
    """Every test starts from empty tables (the migration history and vault secrets are kept)."""
    yield
    assert Tortoise.apps is not None
    tables = ", ".join(
        f'"{m._meta.db_table}"'
        for m in Tortoise.apps.get_models_iterable()
        if m._meta.db_table not in KEPT_TABLES
    )
    # Emptied by the owner with DELETE under session_replication_role = replica (maintenance:
    # the ledgers' guards and the foreign keys are suspended for this transaction only; the
    # application role may do none of it): most tables are empty or nearly, and DELETE touches
    # no files, where TRUNCATE makes new ones for every table.
    deletes = " ".join(f"DELETE FROM {table};" for table in tables.split(", "))
    await owner.execute(f"BEGIN; SET LOCAL session_replication_role = replica; {deletes} COMMIT;")


@pytest.fixture
def sql() -> StatementRecorder:
    """Counts SQL statements: ``with sql.recording(): ...`` then ``sql.count``."""
    return StatementRecorder()


@pytest.fixture(scope="session")
def auth(settings: Settings) -> AuthSettings:
    """The authentication settings the app uses (same secret, same hashing cost)."""
    return auth_settings(settings)


@pytest.fixture
async def admin_headers(auth: AuthSettings) -> dict[str, str]:
    """Headers of an admin API key."""
    return bearer(await make_api_key(auth, Role.ADMIN))


@pytest.fixture(scope="session")
def vault(settings: Settings) -> Vault:
    """The vault the app uses (same master key file, same caches)."""
    return Vault(provider_from_settings(settings))


@pytest.fixture(scope="session")
def app(settings: Settings, vault: Vault) -> Starlette:
    return create_app(settings, database="external", vault=vault)


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client on the real ASGI app (no network)."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as client:
        yield client


class GraphQLClient:
    """Posts GraphQL operations to ``/graphql`` and returns the decoded answer."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    async def __call__(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=headers
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        problems = check_field_paths(query, body)
        assert problems == [], "error fields that are not argument paths of the schema"
        return body


@pytest.fixture
def gql(client: httpx.AsyncClient) -> GraphQLClient:
    return GraphQLClient(client)
