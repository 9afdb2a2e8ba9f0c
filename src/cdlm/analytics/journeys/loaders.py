"""DataLoader batch functions of journeys."""

from __future__ import annotations

import uuid

from cdlm.analytics.journeys import service
from cdlm.customer360 import reader
from cdlm.customer360.values import EventValue
from cdlm.vault.service import Vault


async def journeys_by_customer(
    page: service.JourneyPage, ids: list[uuid.UUID]
) -> list[service.Journey]:
    """The same page of each customer's journey (one statement for every customer)."""
    found = await service.journeys(ids, page)
    return [found[i] for i in ids]


async def events_by_id(vault: Vault, ids: list[uuid.UUID]) -> list[EventValue | None]:
    """Events by id with their properties opened (None: gone, or its customer erased)."""
    found = await reader.events(vault, ids)
    return [found[i][1] if i in found else None for i in ids]
