"""DataLoader batch functions of consent (a constant number of queries per request)."""

from __future__ import annotations

import uuid

from cdlm.consent import service
from cdlm.consent.models import PurposeNotice


async def notices_by_purpose(ids: list[uuid.UUID]) -> list[list[PurposeNotice]]:
    """Each purpose's notice versions, oldest first."""
    found = await service.notices_of(list(set(ids)))
    return [found[purpose_id] for purpose_id in ids]
