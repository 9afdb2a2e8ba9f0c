"""Transactions that PostgreSQL may abort under concurrency, run again until they commit.

A deadlock (SQLSTATE 40P01) or a serialization failure (40001) rolls the whole transaction back
and says nothing about the request itself: running it again is the documented remedy. Services
whose transactions can meet such failures under load wrap them with :func:`retrying`, so a
client never sees a masked internal error for a batch that would have succeeded a moment later.
Locks are still taken in one order wherever the code can (see :mod:`cdlm.core.locks`): retrying
is the safety net, not the design.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tortoise.backends.base.client import TransactionalDBClient
from tortoise.connection import get_connection

log = logging.getLogger("cdlm.transactions")  # its name before it moved to core/

T = TypeVar("T")

#: SQLSTATEs after which the same transaction may simply be run again.
TRANSIENT_SQLSTATES = frozenset({"40P01", "40001"})
ATTEMPTS = 5
BASE_DELAY = 0.01


def transient_sqlstate(error: BaseException) -> str | None:
    """The SQLSTATE of a transient failure in ``error``'s cause chain, or None."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        state = getattr(current, "sqlstate", None)
        if state in TRANSIENT_SQLSTATES:
            return str(state)
        current = current.__cause__ or current.__context__
    return None


def in_outer_transaction() -> bool:
    """True when the caller already runs inside a transaction (a retry must happen there)."""
    return isinstance(get_connection("default"), TransactionalDBClient)


async def retrying(work: Callable[[], Awaitable[T]], *, attempts: int = ATTEMPTS) -> T:
    """Run ``work`` (which opens its own transaction) again after a deadlock or serialization
    failure, up to ``attempts`` times with a short jittered back-off.

    Inside an outer transaction nothing is retried: the failure aborted the outer one too, so
    only its owner can run it again.
    """
    if in_outer_transaction():
        return await work()
    for attempt in range(1, attempts + 1):
        try:
            return await work()
        except Exception as error:
            state = transient_sqlstate(error)
            if state is None or attempt == attempts:
                raise
            log.warning("transaction retried", extra={"sqlstate": state, "attempt": attempt})
            await asyncio.sleep(BASE_DELAY * attempt * (1 + random.random()))  # noqa: S311
    raise AssertionError("unreachable")  # pragma: no cover
