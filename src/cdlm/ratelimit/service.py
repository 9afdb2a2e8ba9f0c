"""Counting attempts per key in fixed windows, shared across processes through PostgreSQL.

Callers pass a key that is already a keyed digest (see ``AuthSettings.keyed_digest``), so the
table never holds an email address or IP address.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tortoise.connection import get_connection
from tortoise.expressions import F

from cdlm.core import clock
from cdlm.disposal import Candidate, DatedRows, delete_rows, due_rows
from cdlm.ratelimit.models import RateLimitCounter


@dataclass(frozen=True)
class Limit:
    """At most ``attempts`` per ``window``."""

    attempts: int
    window: timedelta


def window_start(limit: Limit, now: datetime | None = None) -> datetime:
    """Start of the window that contains ``now``."""
    moment = now or clock.now()
    seconds = int(limit.window.total_seconds())
    epoch = int(moment.timestamp())
    return datetime.fromtimestamp(epoch - epoch % seconds, UTC)


async def attempts(key_digest: str, limit: Limit) -> int:
    """Attempts counted for the key in the current window."""
    row = await RateLimitCounter.get_or_none(
        key_digest=key_digest, window_start=window_start(limit)
    )
    return row.count if row else 0


async def is_limited(key_digest: str, limit: Limit) -> bool:
    """True when the key has used up its attempts in the current window."""
    return await attempts(key_digest, limit) >= limit.attempts


async def count_attempt(key_digest: str, limit: Limit) -> int:
    """Count one attempt (atomic upsert); returns the window's count including it."""
    start = window_start(limit)
    rows = await get_connection("default").execute_query_dict(
        'INSERT INTO "rate_limit_counters" ("key_digest", "window_start", "count") '
        'VALUES ($1, $2, 1) ON CONFLICT ("key_digest", "window_start") '
        'DO UPDATE SET "count" = "rate_limit_counters"."count" + 1 RETURNING "count"',
        [key_digest, start],
    )
    await RateLimitCounter.filter(key_digest=key_digest, window_start__lt=start).delete()
    return int(rows[0]["count"])


async def clear(key_digest: str) -> None:
    """Forget the key's attempts (after a success)."""
    await RateLimitCounter.filter(key_digest=key_digest).delete()


async def give_back(key_digest: str, limit: Limit) -> None:
    """Undo one counted attempt in the current window (after a success)."""
    await RateLimitCounter.filter(
        key_digest=key_digest, window_start=window_start(limit), count__gt=0
    ).update(count=F("count") - 1)


async def counters_due(cutoff: datetime, after: str | None, limit: int) -> list[Candidate]:
    """Counters of windows that started before ``cutoff``."""
    return await due_rows(
        DatedRows(RateLimitCounter, "window_start", id_type=int), cutoff, after, limit
    )


async def delete_counters(ids: list[str]) -> int:
    """Delete counters."""
    return await delete_rows(RateLimitCounter, ids, id_type=int)
