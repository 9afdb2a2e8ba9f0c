"""Fixed-window attempt counters in PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from cdlm.core import clock
from cdlm.ratelimit import service as ratelimit
from cdlm.ratelimit.models import RateLimitCounter

LIMIT = ratelimit.Limit(attempts=3, window=timedelta(minutes=10))


async def test_counts_until_the_limit_within_a_window() -> None:
    with clock.frozen_at(datetime(2026, 5, 1, 12, 1, tzinfo=UTC)):
        assert not await ratelimit.is_limited("k", LIMIT)
        assert [await ratelimit.count_attempt("k", LIMIT) for _ in range(3)] == [1, 2, 3]
        assert await ratelimit.is_limited("k", LIMIT)
        assert not await ratelimit.is_limited("other", LIMIT)
    with clock.frozen_at(datetime(2026, 5, 1, 12, 10, tzinfo=UTC)):
        assert not await ratelimit.is_limited("k", LIMIT)
        assert await ratelimit.count_attempt("k", LIMIT) == 1
    assert await RateLimitCounter.filter(key_digest="k").count() == 1  # old window removed


async def test_concurrent_attempts_are_all_counted() -> None:
    counts = await asyncio.gather(*(ratelimit.count_attempt("burst", LIMIT) for _ in range(25)))
    assert sorted(counts) == list(range(1, 26))
    assert await ratelimit.attempts("burst", LIMIT) == 25


async def test_clear() -> None:
    await ratelimit.count_attempt("k", LIMIT)
    await ratelimit.clear("k")
    assert await ratelimit.attempts("k", LIMIT) == 0


def test_window_start_aligns_to_the_window() -> None:
    moment = datetime(2026, 5, 1, 12, 17, 45, tzinfo=UTC)
    assert ratelimit.window_start(LIMIT, moment) == datetime(2026, 5, 1, 12, 10, tzinfo=UTC)
