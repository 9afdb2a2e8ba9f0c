"""DataLoader batch functions of consent (a constant number of queries per request)."""

from __future__ import annotations

import uuid

from cdlm.consent import service
from cdlm.consent.models import ConsentEntry, Purpose, PurposeNotice


async def consents_by_customer(
    ids: list[uuid.UUID],
) -> list[list[tuple[Purpose, ConsentEntry | None]]]:
    """Each customer's latest decision per purpose (None: the mechanism's default applies)."""
    purposes = await service.all_purposes()
    latest = await service.current_entries(list(set(ids)), [p.id for p in purposes])
    return [[(p, latest.get((customer_id, p.id))) for p in purposes] for customer_id in ids]


async def notices_by_purpose(ids: list[uuid.UUID]) -> list[list[PurposeNotice]]:
    """Each purpose's notice versions, oldest first."""
    found = await service.notices_of(list(set(ids)))
    return [found[purpose_id] for purpose_id in ids]
