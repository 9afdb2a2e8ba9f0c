"""DataLoader batch functions of consent (a constant number of queries per request)."""

from __future__ import annotations

import uuid

from cdlm.consent import service
from cdlm.consent.models import PurposeNotice
from cdlm.customers.models import Customer


async def consents_by_customer(rows: list[Customer]) -> list[list[service.Answer]]:
    """Each customer's answer per purpose (:func:`cdlm.consent.service.answers`), from the
    customer rows the request has read (their restriction is not read again)."""
    found = await service.answers(
        [r.id for r in rows],
        await service.all_purposes(),
        processable={r.id for r in rows if r.erased_at is None and r.restricted_at is None},
    )
    return [found[row.id] for row in rows]


async def notices_by_purpose(ids: list[uuid.UUID]) -> list[list[PurposeNotice]]:
    """Each purpose's notice versions, oldest first."""
    found = await service.notices_of(list(set(ids)))
    return [found[purpose_id] for purpose_id in ids]
