"""The asyncpg connection class of cdlm's pool: released without a reset round trip.

asyncpg resets every connection it takes back into its pool (``SELECT
pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``): one more round trip per
statement run outside a transaction. cdlm keeps no session state on pooled connections — locks
are transaction-scoped, there are no session settings, cursors or listeners — so the reset is
skipped, except after :func:`try_session_lock` took a session-level lock, where the locks are
released on the way back to the pool even if the holder could not unlock.
"""

from __future__ import annotations

from typing import Any

import asyncpg

_UNLOCK_ALL = "SELECT pg_advisory_unlock_all()"


class PooledConnection(asyncpg.Connection):
    """A connection that is reset on release only when it held a session-level lock."""

    session_locked = False

    def get_reset_query(self) -> str:
        if self.session_locked:
            self.session_locked = False
            return _UNLOCK_ALL
        return ""


async def try_session_lock(connection: Any, key: int) -> bool:
    """Take the session-level advisory lock ``key`` on ``connection`` if it is free (a lock
    held across transactions, e.g. by a long import); False when another session holds it."""
    taken = bool(await connection.fetchval("SELECT pg_try_advisory_lock($1)", key))
    held = getattr(connection, "_con", connection)  # a pool hands out proxies
    if taken and isinstance(held, PooledConnection):
        held.session_locked = True
    return taken
