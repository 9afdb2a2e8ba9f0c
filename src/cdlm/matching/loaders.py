"""DataLoader batch functions of matching (one query per relation per request)."""

from __future__ import annotations

import uuid

from cdlm.matching import history, service
from cdlm.matching.models import MatchCandidate, MatchRun, Merge


async def merges_by_customer(ids: list[uuid.UUID]) -> list[list[Merge]]:
    """Every merge each customer took part in, oldest first."""
    grouped = await history.of_customers(list(set(ids)))
    return [grouped[customer_id] for customer_id in ids]


async def candidates_by_id(ids: list[uuid.UUID]) -> list[MatchCandidate | None]:
    """Match candidates by id (None for an unknown id)."""
    found = await service.candidates_by_ids(list(set(ids)))
    return [found.get(i) for i in ids]


async def runs_by_id(ids: list[uuid.UUID]) -> list[MatchRun | None]:
    """Match runs by id (None for an unknown id)."""
    found = await service.runs_by_ids(list(set(ids)))
    return [found.get(i) for i in ids]


async def merges_by_id(ids: list[uuid.UUID]) -> list[Merge | None]:
    """Merges by id (None for an unknown id)."""
    found = await service.merges_by_ids(list(set(ids)))
    return [found.get(i) for i in ids]
