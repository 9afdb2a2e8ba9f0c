"""Where reads go: the read replica (``CDLM_DATABASE_READ_URL``) or the primary.

One rule: a read goes to the replica when it runs inside :func:`replica_reads` (a service
declaring that its answer may lag the primary by the replication delay: lists, analytics,
dashboards, funnels and reports), outside any transaction, and a replica is open. Everything
else stays on the primary: every write, every read inside a transaction (it must see its own
writes and hold its locks), and reads whose answer must be current (consent decisions,
authentication, idempotency, rate limits, locks), which insist with :func:`primary_reads`
when a replica scope calls them.

Such a read asks :func:`read_connection` for its connection (raw SQL runs on it, a queryset
takes it with ``using_db``). The replica is a second asyncpg pool kept here, beside Tortoise's
connections rather than among them (a second named connection would make every unnamed
``in_transaction()`` ambiguous). Its sessions are read-only (``default_transaction_read_only``)
and named ``cdlm-read``, so a write sent there by mistake fails, even on a writable endpoint.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Final, ParamSpec, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.connection import get_connection

from cdlm.db.orm_config import connection_credentials

if TYPE_CHECKING:
    from cdlm.config import DatabaseTarget

#: The connection names of the replica's client and of the primary (Tortoise's ``default``).
REPLICA: Final = "replica"
PRIMARY: Final = "default"
#: How replica sessions name themselves (``pg_stat_activity.application_name``).
REPLICA_APPLICATION_NAME: Final = "cdlm-read"

_stale_ok: ContextVar[bool] = ContextVar("cdlm_replica_reads", default=False)
#: The replica's client, open for the process (as Tortoise's pool is), or None.
_replica: BaseDBAsyncClient | None = None

P = ParamSpec("P")
R = TypeVar("R")


@contextmanager
def _scope(value: bool) -> Iterator[None]:
    token = _stale_ok.set(value)
    try:
        yield
    finally:
        _stale_ok.reset(token)


def replica_reads(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate a read service whose answer may lag the primary: its reads outside a
    transaction go to the replica when one is configured."""

    @functools.wraps(function)
    async def routed(*args: P.args, **kwargs: P.kwargs) -> R:
        with _scope(True):
            return await function(*args, **kwargs)

    return routed


def primary_reads(function: Callable[P, Awaitable[R]]) -> Callable[P, Awaitable[R]]:
    """Decorate a read whose answer must be current: it reads the primary even when called
    from inside :func:`replica_reads`."""

    @functools.wraps(function)
    async def pinned(*args: P.args, **kwargs: P.kwargs) -> R:
        with _scope(False):
            return await function(*args, **kwargs)

    return pinned


def read_connection() -> BaseDBAsyncClient:
    """The connection for a read: the replica inside :func:`replica_reads` (outside a
    transaction, when one is open), else the primary (or the open transaction)."""
    primary = get_connection(PRIMARY)
    if _replica is None or not _stale_ok.get() or isinstance(primary, TransactionalDBClient):
        return primary
    return _replica


async def open_replica(
    target: DatabaseTarget,
    *,
    pool_max: int = 10,
    connect_timeout: float = 5.0,
    connection_class: type | None = None,
) -> BaseDBAsyncClient:
    """Open the replica's pool (read-only sessions named ``cdlm-read``) for the process."""
    from tortoise.backends.asyncpg.client import AsyncpgDBClient

    global _replica
    credentials = connection_credentials(
        target,
        pool_max=pool_max,
        connect_timeout=connect_timeout,
        connection_class=connection_class,
    )
    credentials["application_name"] = REPLICA_APPLICATION_NAME
    credentials["server_settings"] = {
        **credentials["server_settings"],
        "default_transaction_read_only": "on",
    }
    client = AsyncpgDBClient(connection_name=REPLICA, **credentials)
    await client.create_connection(with_db=True)
    await close_replica()
    _replica = client
    return client


async def close_replica() -> None:
    """Close the replica's pool if one is open (reads go to the primary afterwards)."""
    global _replica
    client, _replica = _replica, None
    if client is not None:
        await client.close()
