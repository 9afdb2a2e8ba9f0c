"""DataLoader batch functions of consent (a constant number of queries per request)."""

from __future__ import annotations

import uuid

from cdlm.consent import service
from cdlm.consent.models import ConsentEntry, Purpose, PurposeNotice


async def notices_by_purpose(ids: list[uuid.UUID]) -> list[list[PurposeNotice]]:
    """Each purpose's notice versions, oldest first."""
    found = await service.notices_of(list(set(ids)))
    return [found[purpose_id] for purpose_id in ids]


async def purposes_by_id(ids: list[uuid.UUID]) -> list[Purpose | None]:
    """Purposes by id (None for an unknown id)."""
    found = await service.purposes_by_ids(ids)
    return [found.get(purpose_id) for purpose_id in ids]


async def entries_by_id(ids: list[uuid.UUID]) -> list[ConsentEntry | None]:
    """Consent ledger entries by id, with their purposes (None for an unknown id)."""
    found = await service.entries_by_ids(ids)
    return [found.get(entry_id) for entry_id in ids]
