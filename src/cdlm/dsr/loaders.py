"""DataLoader batch functions of data subject requests."""

from __future__ import annotations

import uuid

from cdlm.dsr import service
from cdlm.dsr.models import DataSubjectRequest
from cdlm.vault.service import Vault


async def timeline_by_request(
    vault: Vault, request_ids: list[uuid.UUID]
) -> list[list[service.TimelineEntry]]:
    """Each request's timeline, oldest first (what staff wrote opened)."""
    found = await service.timelines(vault, request_ids)
    return [found[r] for r in request_ids]


async def reasons_by_request(
    vault: Vault, requests: list[DataSubjectRequest]
) -> list[service.Reasons]:
    """Each request's reasons (what staff wrote opened)."""
    found = await service.reasons(vault, requests)
    return [found[r.id] for r in requests]


async def requests_by_id(request_ids: list[uuid.UUID]) -> list[DataSubjectRequest | None]:
    """Requests by id (None when unknown)."""
    found = await service.by_ids(request_ids)
    return [found.get(r) for r in request_ids]


async def subject_by_request(vault: Vault, requests: list[DataSubjectRequest]) -> list[str | None]:
    """The identifier each requester gave (None once destroyed)."""
    keys = await vault.customer_keys([r.id for r in requests])
    return [
        service.subject_of(vault.open(keys[r.id], r.id, "subject", r.subject_sealed)).text
        if r.id in keys and r.subject_sealed is not None
        else None
        for r in requests
    ]
