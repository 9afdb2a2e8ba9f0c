"""Reaching, preparing and releasing the database: connection checks, migrations, ORM init."""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import asyncpg
from tortoise import Tortoise
from tortoise.connection import get_connection
from tortoise.context import TortoiseContext
from tortoise.exceptions import OperationalError

from cdlm.config import DatabaseTarget, Settings
from cdlm.db.errors import DatabaseUnavailable
from cdlm.db.login import login_connect
from cdlm.db.orm_config import APP_LABEL, tortoise_config
from cdlm.db.reads import close_replica, open_replica
from cdlm.ledgers.keys import install as install_ledger_keys

if TYPE_CHECKING:
    from tortoise.migrations.executor import MigrationExecutor

log = logging.getLogger(__name__)

#: Key of the PostgreSQL advisory lock that serializes concurrent ``migrate`` runs.
MIGRATION_LOCK_KEY = 0x63646C6D  # "cdlm"
#: The application role the migrations grant to when none is named.
DEFAULT_APP_ROLE = "cdlm_app"


def _explain(exc: BaseException) -> str:
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return "authentication failed"
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return "the database does not exist"
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return "the role is not allowed to connect"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, FileNotFoundError):
        return "no server socket at that path"
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    if isinstance(exc, asyncpg.PostgresError):
        return f"server refused: {exc.sqlstate}"
    return type(exc).__name__


async def connect(target: DatabaseTarget, timeout: float = 5.0) -> asyncpg.Connection:
    """Open one raw connection to ``target``; a failure raises :class:`DatabaseUnavailable`."""
    kwargs: dict[str, Any] = {}
    if target.ssl is not None and target.ssl != "disable":
        kwargs["ssl"] = target.ssl
    opener = asyncpg.connect if target.login is None else login_connect(target.login)
    try:
        connection: asyncpg.Connection = await opener(
            host=target.host,
            port=target.port,
            user=target.user,
            password=target.password or None,
            database=target.database,
            timeout=timeout,
            **kwargs,
        )
    except (OSError, TimeoutError, asyncpg.PostgresError, ssl.SSLError) as exc:
        raise DatabaseUnavailable(
            f"cannot reach the database {target.safe_description}: {_explain(exc)}"
        ) from exc
    return connection


async def ensure_database(target: DatabaseTarget, timeout: float = 5.0) -> bool:
    """Create ``target.database`` if it does not exist; True when it was created."""
    admin = await connect(target.with_database("postgres"), timeout)
    try:
        exists = await admin.fetchval(
            "SELECT 1 FROM pg_database WHERE datname = $1", target.database
        )
        if exists:
            return False
        quoted = '"' + target.database.replace('"', '""') + '"'
        await admin.execute(f"CREATE DATABASE {quoted}")
        return True
    finally:
        await admin.close()


async def drop_database(target: DatabaseTarget, timeout: float = 5.0) -> None:
    """Drop ``target.database``, disconnecting its sessions (used by tests and tools)."""
    admin = await connect(target.with_database("postgres"), timeout)
    try:
        quoted = '"' + target.database.replace('"', '""') + '"'
        await admin.execute(f"DROP DATABASE IF EXISTS {quoted} WITH (FORCE)")
    finally:
        await admin.close()


async def server_version(target: DatabaseTarget, timeout: float = 5.0) -> str:
    """Check that ``target`` answers; returns the server version string."""
    connection = await connect(target, timeout)
    try:
        version: str = await connection.fetchval("SHOW server_version")
        return version
    finally:
        await connection.close()


@dataclass(frozen=True)
class MigrationStatus:
    """Which migrations are recorded in the database and which are still to apply."""

    applied: list[str]
    pending: list[str]


def app_role_target(owner: DatabaseTarget, app_role: str = DEFAULT_APP_ROLE) -> DatabaseTarget:
    """The owner's database reached as ``app_role`` without a password (the embedded server
    trusts its Unix socket; elsewhere the app role's own URL is ``DATABASE_URL``)."""
    return replace(owner, user=app_role, password="")


@asynccontextmanager
async def _migration_context(
    target: DatabaseTarget, app_role: str = DEFAULT_APP_ROLE
) -> AsyncIterator[MigrationExecutor]:
    from tortoise.migrations.executor import MigrationExecutor  # not on the API's start-up

    config = tortoise_config(target, pool_max=2)
    # Read by the migration that creates and grants the application role (database_roles).
    config["connections"]["default"]["credentials"]["server_settings"]["cdlm.app_role"] = app_role
    async with TortoiseContext() as ctx:
        await ctx.init(config=config)
        apps = {APP_LABEL: config["apps"][APP_LABEL]}
        yield MigrationExecutor(get_connection("default"), apps)


async def migration_status(target: DatabaseTarget) -> MigrationStatus:
    """Applied and pending migrations of the ``cdlm`` app."""
    async with _migration_context(target) as executor:
        plan = await executor.plan()
        applied = await executor.recorder.applied_migrations()
    return MigrationStatus(
        applied=sorted(key.name for key in applied if key.app_label == APP_LABEL),
        pending=[step.migration.name for step in plan if not step.backward],
    )


async def apply_migrations(
    target: DatabaseTarget, timeout: float = 5.0, *, app_role: str = DEFAULT_APP_ROLE
) -> list[str]:
    """Apply every pending migration as ``target``'s user (the tables' owner); returns the names
    applied (empty when up to date). ``app_role`` is the role the migrations create and grant
    the application's privileges to.

    Concurrent callers (two containers starting at once) are serialized by an advisory lock.
    """
    lock = await connect(target, timeout)
    applied: list[str] = []

    def progress(event: str, app_label: str, name: str) -> None:
        if event == "apply_done":
            applied.append(name)
            log.info("migration applied", extra={"migration": f"{app_label}.{name}"})

    try:
        await lock.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK_KEY)
        async with _migration_context(target, app_role) as executor:
            try:
                await executor.migrate(progress=progress)
            except OperationalError as exc:
                if not isinstance(exc.__cause__, asyncpg.InsufficientPrivilegeError):
                    raise
                raise DatabaseUnavailable(
                    f"{target.user} may not change the schema of {target.safe_description}: "
                    "migrate as the tables' owner (CDLM_DATABASE_OWNER_URL)"
                ) from exc
    finally:
        await lock.close()
    return applied


async def init_orm(
    target: DatabaseTarget,
    settings: Settings | None = None,
    *,
    extra_apps: dict[str, dict[str, Any]] | None = None,
    connection_class: type | None = None,
) -> TortoiseContext:
    """Initialize Tortoise for the whole process (all tasks see it) and open the pool (and the
    read replica's, when ``settings`` name one); with ``settings``, also load the ledger key the
    audit and consent chains are written under."""
    if settings is not None:
        install_ledger_keys(settings)
    config = tortoise_config(
        target,
        pool_max=settings.db_pool_max if settings else 10,
        connect_timeout=settings.db_connect_timeout if settings else 5.0,
        extra_apps=extra_apps,
        connection_class=connection_class,
    )
    context = await Tortoise.init(config=config, _enable_global_fallback=True)
    if settings is not None and settings.database_read is not None:
        await open_replica(
            settings.database_read,
            pool_max=settings.db_pool_max,
            connect_timeout=settings.db_connect_timeout,
            connection_class=connection_class,
        )
    return context


async def close_orm(context: TortoiseContext | None = None) -> None:
    """Close the pools opened by :func:`init_orm`."""
    await close_replica()
    if context is not None:
        await context.close_connections()
    else:
        await Tortoise.close_connections()


def orm_ready() -> bool:
    """True when Tortoise is initialized in this process."""
    return Tortoise.is_inited()


async def ping() -> float:
    """Round-trip a trivial query through the pool; returns the latency in milliseconds."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    await get_connection("default").execute_query("SELECT 1")
    return (loop.time() - started) * 1000.0


def scram_verifier(password: str, *, iterations: int = 4096) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (so a password can be set
    without the server, or its statement log, ever seeing it)."""
    import base64
    import hashlib
    import hmac
    import os

    salt = os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
    server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    stored_key = hashlib.sha256(client_key).digest()
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


async def ensure_login(owner: DatabaseTarget, app: DatabaseTarget, timeout: float = 5.0) -> bool:
    """Make ``app``'s role log in with the password of its login (its secret): tried first,
    and when refused the owner gives the role that password. True when it was set.

    The first deployment needs it (the app role is created without a password); after that
    the secret's rotation changes both together and this finds nothing to do."""
    try:
        probe = await connect(app, timeout)
    except DatabaseUnavailable as refused:
        if not isinstance(refused.__cause__, asyncpg.InvalidPasswordError):
            raise
    else:
        await probe.close()
        return False
    user, password = app.login(False) if app.login is not None else (app.user, app.password)
    connection = await connect(owner, timeout)
    try:
        statement = await connection.fetchval(
            "SELECT format('ALTER ROLE %I PASSWORD %L', $1::text, $2::text)",
            user,
            scram_verifier(password),
        )
        await connection.execute(statement)
    finally:
        await connection.close()
    log.info("app role's password set from its secret", extra={"role": user})
    return True
