"""Retention disposal of request data: access exports, verification codes, sent
notifications, and closed requests (their requester's details, or the whole request)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import datetime

from tortoise.expressions import Q

from cdlm.disposal import Candidate, DatedRows, delete_rows, due_rows
from cdlm.dsr import outbox
from cdlm.dsr.models import AccessExport, DataSubjectRequest, Notification, VerificationCode
from cdlm.dsr.service import destroy_request_secrets
from cdlm.dsr.workflow import FINAL
from cdlm.vault.service import Vault


async def exports_due(cutoff: datetime, after: str | None, limit: int) -> list[Candidate]:
    """Access exports made before ``cutoff``."""
    exports = DatedRows(AccessExport, "created_at", customer_field="request__customer_id")
    return await due_rows(exports, cutoff, after, limit)


async def delete_exports(ids: list[str]) -> int:
    """Delete access exports (and their links)."""
    return await delete_rows(AccessExport, ids)


async def codes_due(cutoff: datetime, after: str | None, limit: int) -> list[Candidate]:
    """Verification codes created before ``cutoff``."""
    codes = DatedRows(VerificationCode, "created_at", customer_field="request__customer_id")
    return await due_rows(codes, cutoff, after, limit)


async def delete_codes(ids: list[str]) -> int:
    """Delete verification codes."""
    return await delete_rows(VerificationCode, ids)


async def notifications_due(cutoff: datetime, after: str | None, limit: int) -> list[Candidate]:
    """Delivered (or given up) notifications created before ``cutoff``."""
    settled = (
        Q(sent_at__isnull=False)
        | Q(payload_sealed__isnull=True)
        | Q(attempts__gte=outbox.MAX_ATTEMPTS)
    )
    return await due_rows(
        DatedRows(Notification, "created_at", where=settled), cutoff, after, limit
    )


async def delete_notifications(ids: list[str]) -> int:
    """Delete notification records."""
    return await delete_rows(Notification, ids)


async def closed_requests_due(
    cutoff: datetime, after: str | None, limit: int, *, with_details_only: bool = False
) -> list[Candidate]:
    """Requests closed (completed, denied, cancelled) before ``cutoff``."""
    where = Q(status__in=list(FINAL))
    if with_details_only:
        where &= Q(subject_sealed__isnull=False) | Q(details_sealed__isnull=False)
    closed = DatedRows(
        DataSubjectRequest, "completed_at", customer_field="customer_id", where=where
    )
    rows = await due_rows(closed, cutoff, after, limit)
    # Requests holding a copy of someone's data are marked, so a hold on dsr.exports keeps them.
    with_exports = set(
        await AccessExport.filter(request_id__in=[uuid.UUID(r.id) for r in rows]).values_list(
            "request_id", flat=True
        )
    )
    return [replace(r, kind="dsr.exports") if uuid.UUID(r.id) in with_exports else r for r in rows]


async def shred_requesters(vault: Vault, ids: list[str]) -> int:
    """Destroy the requesters' details (their request keys and the blind index of their
    identifier); the requests stay as records."""
    request_ids = [uuid.UUID(i) for i in ids]
    await destroy_request_secrets(vault, request_ids)
    return await DataSubjectRequest.filter(id__in=request_ids).update(subject_index="")


async def delete_requests(vault: Vault, ids: list[str]) -> int:
    """Delete closed requests with their timelines, codes, exports and notifications."""
    request_ids = [uuid.UUID(i) for i in ids]
    for request_id in request_ids:
        await vault.shred(request_id)
    await Notification.filter(request_id__in=request_ids).delete()
    return await DataSubjectRequest.filter(id__in=request_ids).delete()


async def customers_with_open_requests(customer_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these customers have a request not yet closed (their data must stay)."""
    if not customer_ids:
        return set()
    rows = await DataSubjectRequest.filter(
        customer_id__in=customer_ids, status__not_in=list(FINAL)
    ).values_list("customer_id", flat=True)
    return {uuid.UUID(str(row)) for row in rows}
