"""Reading analytics runs (the runs themselves are :mod:`cdlm.analytics.runs`, a job)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from tortoise.queryset import QuerySet

from cdlm.analytics.models import AnalyticsRun, AnalyticsRunStatus


@dataclass(frozen=True)
class RunFilter:
    """Criteria of the list of analytics runs."""

    status: AnalyticsRunStatus | None = None


def runs(criteria: RunFilter | None = None) -> QuerySet[AnalyticsRun]:
    """Analytics runs matching ``criteria`` (paginate it)."""
    query = AnalyticsRun.all()
    if criteria is not None and criteria.status is not None:
        query = query.filter(status=criteria.status)
    return query


async def runs_by_ids(ids: list[uuid.UUID]) -> dict[uuid.UUID, AnalyticsRun]:
    """The analytics runs with these ids (one query; unknown ids are absent)."""
    return {row.id: row for row in await AnalyticsRun.filter(id__in=ids)} if ids else {}
