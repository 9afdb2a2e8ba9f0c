"""DataLoader batch functions of analytics."""

from __future__ import annotations

import uuid

from cdlm.analytics import service
from cdlm.analytics.models import AnalyticsRun


async def runs_by_id(ids: list[uuid.UUID]) -> list[AnalyticsRun | None]:
    """Analytics runs by id (None for an unknown id)."""
    found = await service.runs_by_ids(list(set(ids)))
    return [found.get(i) for i in ids]
