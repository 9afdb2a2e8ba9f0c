"""The installation record and the health report."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from cdlm.core import clock
from cdlm.system.models import Installation
from cdlm.system.service import check_health, ensure_installation


async def test_installation_is_recorded_once_even_when_raced() -> None:
    moment = datetime(2026, 5, 1, 9, tzinfo=UTC)
    with clock.frozen_at(moment):
        rows = await asyncio.gather(*(ensure_installation() for _ in range(5)))
    assert len({row.id for row in rows}) == 1
    assert await Installation.all().count() == 1
    assert rows[0].installed_at == moment
    later = await ensure_installation()
    assert later.id == rows[0].id


async def test_health_reports_installation_and_latency() -> None:
    before = await check_health()
    assert before.ok
    assert before.installed_at is None
    row = await ensure_installation()
    after = await check_health()
    assert after.installed_at == row.installed_at
    assert after.database_latency_ms is not None
    assert after.database_latency_ms >= 0
