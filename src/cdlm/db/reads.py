"""Where reads go: the read replica (``CDLM_DATABASE_READ_URL``) or the primary.

One rule: a read goes to the replica when it runs inside :func:`replica_reads` (a service
declaring that its answer may lag the primary by the replication delay: lists, analytics,
dashboards, funnels and reports), outside any transaction, and a replica is configured.
Everything else stays on the primary: every write, every read inside a transaction (it must
see its own writes and hold its locks), and reads whose answer must be current (consent
decisions, authentication, idempotency, rate limits, locks), which can also insist with
:func:`primary_reads` when a replica scope calls them.

ORM querysets are routed by :class:`ReplicaRouter` (installed in the Tortoise configuration
only when a replica is configured); raw SQL asks :func:`read_connection`. Replica sessions
are read-only (``default_transaction_read_only``), so a write sent there fails instead of
landing on a writable endpoint by mistake.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, ParamSpec, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient, TransactionalDBClient
from tortoise.connection import get_connection, get_connections

if TYPE_CHECKING:
    from tortoise.models import Model

#: The Tortoise connection name of the replica (the primary is ``default``).
REPLICA: Final = "replica"
PRIMARY: Final = "default"
#: How replica sessions name themselves (``pg_stat_activity.application_name``).
REPLICA_APPLICATION_NAME: Final = "cdlm-read"

_stale_ok: ContextVar[bool] = ContextVar("cdlm_replica_reads", default=False)

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


def _in_transaction(name: str) -> bool:
    return isinstance(get_connection(name), TransactionalDBClient)


def _use_replica(primary: str = PRIMARY) -> bool:
    if not _stale_ok.get() or _in_transaction(primary):
        return False
    return REPLICA in get_connections().db_config


def read_connection() -> BaseDBAsyncClient:
    """The connection for a raw SQL read: the replica inside :func:`replica_reads` (outside a
    transaction, when configured), else the primary (or the open transaction)."""
    return get_connection(REPLICA if _use_replica() else PRIMARY)


class ReplicaRouter:
    """Tortoise router: querysets read from the replica under :func:`replica_reads`; writes
    and everything else use the model's own connection."""

    def db_for_read(self, model: type[Model]) -> str | None:
        """The replica for a routed read of a model of the primary; else the model's own."""
        own = model._meta.default_connection
        if own == PRIMARY and _use_replica():
            return REPLICA
        return own

    def db_for_write(self, model: type[Model]) -> str | None:
        """Always the model's own connection (the primary)."""
        return model._meta.default_connection


def replica_config(credentials: dict[str, Any]) -> dict[str, Any]:
    """The Tortoise connection entry of the replica from asyncpg pool ``credentials``: its
    sessions are read-only and say so in ``application_name``."""
    settings = dict(credentials.get("server_settings") or {})
    settings["default_transaction_read_only"] = "on"
    return {
        "engine": "tortoise.backends.asyncpg",
        "credentials": {
            **credentials,
            "application_name": REPLICA_APPLICATION_NAME,
            "server_settings": settings,
        },
    }
