"""DataLoader batch functions of personalization (one statement set per request, whatever
the number of customers on the page)."""

from __future__ import annotations

import uuid

from cdlm.analytics.recommendations import service
from cdlm.analytics.recommendations.models import ItemModel


async def permissions_by_customer(purpose: str, ids: list[uuid.UUID]) -> list[service.Permission]:
    """Each customer's personalization answer for ``purpose``."""
    return await service.permissions(purpose, ids)


async def recommendations_by_customer(
    ask: service.Ask, ids: list[uuid.UUID]
) -> list[list[service.Recommended]]:
    """Each customer's recommended items, best first."""
    found = await service.recommended(ids, ask)
    return [found[i] for i in ids]


async def latest_model_by_key(keys: list[str]) -> list[ItemModel | None]:
    """The newest item model's evidence, for every key (there is one model)."""
    latest = await service.latest_model()
    return [latest for _ in keys]
