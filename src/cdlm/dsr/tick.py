"""The scheduled pass over data subject requests (``cdlm dsr tick`` and a Lambda schedule).

It flags open requests nearing their due date (``CDLM_DSR_DUE_SOON_DAYS``) or past it, once
each, on their timeline and in the log (ids and days only); retries undelivered notifications;
and destroys the contact details of completed erasures whose last notice has gone out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from tortoise.transactions import in_transaction

from cdlm import clock
from cdlm.auth.principal import SYSTEM
from cdlm.config import Settings
from cdlm.dsr import erasure, outbox
from cdlm.dsr.models import DataSubjectRequest, RequestType
from cdlm.dsr.notifier import Notifier
from cdlm.dsr.service import OPEN, add_event, clock_of, locked
from cdlm.dsr.workflow import WAITING_ON_REQUESTER, Status
from cdlm.vault.service import Vault

logger = logging.getLogger("cdlm.dsr")


@dataclass(frozen=True)
class TickReport:
    """What one pass did."""

    flagged_due_soon: int
    flagged_overdue: int
    open_overdue: int
    notifications_sent: int
    notifications_failed: int
    requester_details_destroyed: int


async def _flag(request_id: object, due_soon: timedelta) -> str | None:
    async with in_transaction():
        request = await locked(request_id)  # type: ignore[arg-type]
        if request.status not in OPEN - WAITING_ON_REQUESTER:
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
        status__in=list(OPEN - WAITING_ON_REQUESTER), due_at__lt=now + due_soon
    ).values_list("id", flat=True)
    flags = [await _flag(request_id, due_soon) for request_id in candidates]
    sent, failed = await outbox.deliver_pending(vault, notifier)
    destroyed = 0
    for request in await DataSubjectRequest.filter(
        type=RequestType.ERASURE, status=Status.COMPLETED, subject_sealed__isnull=False
    ):
        destroyed += await erasure.forget_requester(vault, request)
    open_overdue = await DataSubjectRequest.filter(
        status__in=list(OPEN - WAITING_ON_REQUESTER), due_at__lt=clock.now()
    ).count()
    return TickReport(
        flagged_due_soon=flags.count("due_soon"),
        flagged_overdue=flags.count("overdue"),
        open_overdue=open_overdue,
        notifications_sent=sent,
        notifications_failed=failed,
        requester_details_destroyed=destroyed,
    )
