"""Pooled connections go back to the pool without a reset round trip, except after a
session-level lock, whose locks are then released on the way back."""

from __future__ import annotations

from tortoise.connection import get_connection

from cdlm.core.locks import lock_key
from cdlm.db.connection import PooledConnection, try_session_lock
from tests.support.sql_counter import StatementRecorder

KEY = lock_key("tests.pooled-connection")


async def test_a_statement_outside_a_transaction_is_one_round_trip(
    sql: StatementRecorder,
) -> None:
    with sql.recording():
        await get_connection("default").execute_query("SELECT 1")
    assert sql.statements == ["SELECT 1"]


async def test_a_session_lock_left_behind_is_released_when_the_connection_returns() -> None:
    client = get_connection("default")
    async with client.acquire_connection() as connection:
        assert isinstance(getattr(connection, "_con", connection), PooledConnection)
        assert await try_session_lock(connection, KEY)
        # The holder "forgets" to unlock (e.g. it was cancelled mid-way).
    async with client.acquire_connection() as first, client.acquire_connection() as second:
        # Whichever connection the pool hands out, the lock is free again.
        assert await try_session_lock(first, KEY)
        assert not await try_session_lock(second, KEY)
        await first.execute("SELECT pg_advisory_unlock($1)", KEY)


async def test_a_session_lock_is_refused_while_held() -> None:
    client = get_connection("default")
    async with client.acquire_connection() as holder, client.acquire_connection() as other:
        assert await try_session_lock(holder, KEY)
        assert not await try_session_lock(other, KEY)
        await holder.execute("SELECT pg_advisory_unlock($1)", KEY)
        assert await try_session_lock(other, KEY)
        await other.execute("SELECT pg_advisory_unlock($1)", KEY)
