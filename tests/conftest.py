"""Test infrastructure: one PostgreSQL per session, a clean database per test, app clients.

PostgreSQL is the embedded server (started in a temporary directory) unless ``DATABASE_URL``
is set, in which case a throw-away database is created on that server and dropped at the end.
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

import httpx
import pytest
from starlette.applications import Starlette
from tortoise import Tortoise
from tortoise.connection import get_connection

from cdlm.app import create_app
from cdlm.auth.settings import AuthSettings, auth_settings
from cdlm.config import DatabaseTarget, Settings, load_settings, parse_database_url
from cdlm.core.roles import Role
from cdlm.db.embedded import EmbeddedPostgres
from cdlm.db.lifecycle import apply_migrations, close_orm, drop_database, ensure_database, init_orm
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
async def database(database_server: DatabaseTarget) -> AsyncIterator[DatabaseTarget]:
    """A freshly created and migrated database for this session, dropped at the end."""
    target = database_server.with_database(f"cdlm_test_{uuid.uuid4().hex[:12]}")
    await ensure_database(target)
    await apply_migrations(target)
    try:
        yield target
    finally:
        await drop_database(target)


@pytest.fixture(scope="session")
def settings(database: DatabaseTarget, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings as a test deployment would have them, pointing at the session database."""
    base = load_settings({**TEST_ENV, "CDLM_DATA_DIR": str(tmp_path_factory.mktemp("data"))})
    return replace(base, database=database)


@pytest.fixture(scope="session")
async def orm(database: DatabaseTarget, settings: Settings) -> AsyncIterator[None]:
    """Tortoise initialized for the session, with the test-only tables created."""
    context = await init_orm(
        database, settings, extra_apps=TEST_APPS, connection_class=CountingConnection
    )
    await Tortoise.generate_schemas(safe=True)
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
async def clean_database(orm: None) -> AsyncIterator[None]:
    """Every test starts from empty tables (the migration history and vault secrets are kept)."""
    yield
    assert Tortoise.apps is not None
    tables = ", ".join(
        f'"{m._meta.db_table}"'
        for m in Tortoise.apps.get_models_iterable()
        if m._meta.db_table not in KEPT_TABLES
    )
    # Emptied with DELETE under session_replication_role = replica (as a database owner doing
    # maintenance would: the ledgers' guards and the foreign keys are suspended for this
    # transaction only): most tables are empty or nearly, and DELETE touches no files, where
    # TRUNCATE makes new ones for every table.
    deletes = " ".join(f"DELETE FROM {table};" for table in tables.split(", "))
    await get_connection("default").execute_script(
        f"BEGIN; SET LOCAL session_replication_role = replica; {deletes} COMMIT;"
    )


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
