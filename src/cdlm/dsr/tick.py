"""The scheduled pass over data subject requests (``cdlm dsr tick`` and a Lambda schedule).

It flags open requests nearing their due date (``CDLM_DSR_DUE_SOON_DAYS``) or past it, once
each, on their timeline and in the log (ids and days only); closes requests never verified
within ``UNVERIFIED_TTL`` (their contact details are destroyed); sends requests on hold back to
approved once their legal hold has ended; deletes access exports no link can fetch any more;
retries undelivered notifications; and destroys the contact details of completed erasures
whose last notice has gone out.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.transactions import in_transaction

from cdlm import clock
from cdlm.auth.principal import SYSTEM
from cdlm.config import Settings
from cdlm.dsr import access, erasure, outbox
from cdlm.dsr.models import DataSubjectRequest, RequestType
from cdlm.dsr.notifier import Notifier
from cdlm.dsr.service import OPEN, add_event, clock_of, locked, move
from cdlm.dsr.workflow import Status
from cdlm.retention import service as retention
from cdlm.vault.service import Vault

logger = logging.getLogger("cdlm.dsr")


UNVERIFIED_TTL = timedelta(days=30)


@dataclass(frozen=True)
class TickReport:
    """What one pass did."""

    flagged_due_soon: int
    flagged_overdue: int
    open_overdue: int
    expired_unverified: int
    resumed_after_hold: int
    exports_deleted: int
    notifications_sent: int
    notifications_failed: int
    requester_details_destroyed: int


async def _flag(request_id: uuid.UUID, due_soon: timedelta) -> str | None:
    async with in_transaction():
        request = await locked(request_id)
        if request.status not in OPEN or request.clock_paused:
            return None
        now = clock.now()
        kept = clock_of(request)
        if kept.overdue(now):
            flag = "overdue"
        elif kept.due_at(now) - now <= due_soon:
            flag = "due_soon"
        else:
            return None
        if request.attention == flag:
            return None
        request.attention = flag
        await request.save(update_fields=["attention"])
        days = kept.days_left(now)
        await add_event(request, flag, SYSTEM, note=f"{days} days left")
    logger.warning(
        "data subject request %s",
        flag.replace("_", " "),
        extra={"request": str(request.id), "days_left": days, "type": request.type.value},
    )
    return flag


async def tick(vault: Vault, notifier: Notifier, settings: Settings) -> TickReport:
    """One pass; safe to run concurrently and as often as wanted."""
    await vault.ready()
    now = clock.now()
    due_soon = timedelta(days=settings.dsr_due_soon_days)
    candidates = await DataSubjectRequest.filter(
        status__in=list(OPEN), clock_paused=False, due_at__lt=now + due_soon
    ).values("id")
    flags = [await _flag(row["id"], due_soon) for row in candidates]
    expired = await _expire_unverified(vault, now - UNVERIFIED_TTL)
    resumed = await _resume_after_holds()
    exports = await access.delete_unreachable_exports()
    sent, failed = await outbox.deliver_pending(vault, notifier)
    destroyed = 0
    for request in await DataSubjectRequest.filter(
        type=RequestType.ERASURE, status=Status.COMPLETED, subject_sealed__isnull=False
    ):
        destroyed += await erasure.forget_requester(vault, request)
    open_overdue = await DataSubjectRequest.filter(
        status__in=list(OPEN), clock_paused=False, due_at__lt=clock.now()
    ).count()
    return TickReport(
        flagged_due_soon=flags.count("due_soon"),
        flagged_overdue=flags.count("overdue"),
        open_overdue=open_overdue,
        expired_unverified=expired,
        resumed_after_hold=resumed,
        exports_deleted=exports,
        notifications_sent=sent,
        notifications_failed=failed,
        requester_details_destroyed=destroyed,
    )


async def _expire_unverified(vault: Vault, received_before: datetime) -> int:
    """Close requests still waiting for verification after the grace period."""
    stale = await DataSubjectRequest.filter(
        status=Status.IDENTITY_PENDING, received_at__lt=received_before
    ).values("id")
    closed = 0
    for row in stale:
        async with in_transaction():
            request = await locked(row["id"])
            if request.status is not Status.IDENTITY_PENDING:
                continue
            request.progress = {**request.progress, "expired": True}
            request.reason = "Not verified within 30 days."
            await move(request, Status.CANCELLED, SYSTEM, note=request.reason)
            await vault.shred(request.id)
            request.subject_sealed = None
            request.details_sealed = None
            await request.save()
            closed += 1
    return closed


async def _resume_after_holds() -> int:
    """Send requests held by a legal hold that has ended back to approved."""
    resumed = 0
    for request in await DataSubjectRequest.filter(status=Status.ON_HOLD):
        held_by = request.progress.get("held_by")
        if held_by is None or await retention.is_active(uuid.UUID(held_by)):
            continue
        async with in_transaction():
            current = await locked(request.id)
            if current.status is not Status.ON_HOLD:
                continue
            current.progress = {k: v for k, v in current.progress.items() if k != "held_by"}
            current.reason = None
            await move(current, Status.APPROVED, SYSTEM, note=f"legal hold {held_by} ended")
            resumed += 1
    return resumed
