"""Job locks: PostgreSQL session-level advisory locks held on a connection of their own.

A job runs many transactions (a sweep's batches, a match run's chunks), so its lock cannot be
transaction-scoped; and it cannot live on a pool connection, which the run's own statements
would then share or which would go back to the pool still locked. So a runner opens one
dedicated connection (:class:`LockConnection`: the CLI and a Lambda invocation for one run, a
worker for its lifetime and all its jobs), takes ``pg_try_advisory_lock`` on it and unlocks
when the run ends.

If the holder dies (killed process, frozen and discarded Lambda container, lost network) the
server ends its session and the lock is free again. If the connection is lost while a run is
going, :attr:`LockConnection.lost` is set and the runner cancels the run: another runner may
already hold the lock. Behind RDS Proxy a session lock pins the connection to one database
session, which is what a dedicated connection wants.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from cdlm.config import DatabaseTarget
from cdlm.db.lifecycle import connect

log = logging.getLogger(__name__)

#: The errors of a statement on a connection that was lost or is being closed.
CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.ConnectionDoesNotExistError,
    asyncpg.InterfaceError,
    asyncpg.AdminShutdownError,
    asyncpg.CannotConnectNowError,
)


class LockLost(RuntimeError):
    """The connection holding a job's lock was lost: the run was stopped."""


class LockConnection:
    """A dedicated connection holding job locks (session-level advisory locks)."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self._connection = connection
        self._statements = asyncio.Lock()  # one statement at a time on a connection
        self._closing = False
        #: Set when the connection is lost (not when it is closed by :meth:`close`).
        self.lost = asyncio.Event()
        connection.add_termination_listener(self._terminated)

    @classmethod
    async def open(cls, target: DatabaseTarget, timeout: float = 5.0) -> LockConnection:
        """Connect to ``target``; a failure raises
        :class:`~cdlm.db.errors.DatabaseUnavailable` (its message names no password)."""
        return cls(await connect(target, timeout))

    def _terminated(self, connection: Any) -> None:
        if not self._closing:
            self.lost.set()

    async def _fetch(self, query: str, *args: Any) -> Any:
        if self.lost.is_set():
            raise LockLost("the job lock connection was lost")
        try:
            async with self._statements:
                return await self._connection.fetchval(query, *args)
        except CONNECTION_ERRORS as error:
            self.lost.set()
            raise LockLost("the job lock connection was lost") from error

    async def try_lock(self, key: int) -> bool:
        """Take the lock ``key`` if no session holds it; False when another does."""
        return bool(await self._fetch("SELECT pg_try_advisory_lock($1)", key))

    async def unlock(self, key: int) -> None:
        """Release the lock ``key`` (nothing to do when the connection is gone: so is the
        lock)."""
        with contextlib.suppress(LockLost):
            await self._fetch("SELECT pg_advisory_unlock($1)", key)

    async def ping(self, timeout: float = 10.0) -> None:
        """Check the connection answers (raises :class:`LockLost` when it does not)."""
        try:
            await asyncio.wait_for(self._fetch("SELECT 1"), timeout)
        except TimeoutError as error:
            self.lost.set()
            raise LockLost("the job lock connection does not answer") from error

    async def close(self) -> None:
        """Close the connection (releasing every lock it holds)."""
        self._closing = True
        try:
            await asyncio.wait_for(self._connection.close(), 5)
        except TimeoutError:
            self._connection.terminate()
        except CONNECTION_ERRORS:
            self._connection.terminate()
