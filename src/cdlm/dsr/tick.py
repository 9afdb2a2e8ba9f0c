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

from tortoise.connection import get_connection
from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from cdlm.config import Settings
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.dsr import access, erasure, outbox
from cdlm.dsr.models import Attention, DataSubjectRequest, RequestEvent, RequestType, TimelineKind
from cdlm.dsr.notifier import Notifier
from cdlm.dsr.service import (
    OPEN,
    STAFF_TEXT,
    NewTimelineEntry,
    add_event,
    clock_of,
    clock_running,
    destroy_request_secrets,
    locked,
    move,
    set_reason,
)
from cdlm.dsr.workflow import Status
from cdlm.erasures import register
from cdlm.holds import service as legal_holds
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
    staff_text_sealed: int = 0
    retained_data_erased: int = 0
    #: Committed erasures written to the erasure register now (earlier writes that failed).
    erasures_registered: int = 0


async def _flag(request_id: uuid.UUID, due_soon: timedelta) -> Attention | None:
    async with in_transaction():
        request = await locked(request_id)
        if request.status not in OPEN or request.clock_paused:
            return None
        now = clock.now()
        kept = clock_of(request)
        if kept.overdue(now):
            flag = Attention.OVERDUE
        elif kept.due_at(now) - now <= due_soon:
            flag = Attention.DUE_SOON
        else:
            return None
        if request.attention == flag:
            return None
        request.attention = flag.value
        await request.save(update_fields=["attention"])
        days = kept.days_left(now)
        await add_event(
            SYSTEM, request, NewTimelineEntry(TimelineKind(flag.value), f"{days} days left")
        )
    logger.warning(
        "data subject request %s",
        flag.value.replace("_", " "),
        extra={"request": str(request.id), "days_left": days, "type": request.type.value},
    )
    return flag


async def tick(vault: Vault, notifier: Notifier, settings: Settings) -> TickReport:
    """One pass; safe to run concurrently and as often as wanted."""
    await vault.ready()
    now = clock.now()
    due_soon = timedelta(days=settings.dsr_due_soon_days)
    candidates = await DataSubjectRequest.filter(clock_running(), due_at__lt=now + due_soon).values(
        "id"
    )
    flags = [await _flag(row["id"], due_soon) for row in candidates]
    expired = await _expire_unverified(vault, now - UNVERIFIED_TTL)
    resumed = await _resume_after_holds()
    released = await _erase_what_ended_holds_kept(vault)
    exports = await access.delete_unreachable_exports()
    sealed = await seal_clear_staff_text(vault)
    sent, failed = await outbox.deliver_pending(vault, notifier)
    destroyed = 0
    for request in await DataSubjectRequest.filter(
        type=RequestType.ERASURE, status=Status.COMPLETED, subject_sealed__isnull=False
    ):
        destroyed += await erasure.forget_requester(vault, request)
    open_overdue = await DataSubjectRequest.filter(clock_running(), due_at__lt=clock.now()).count()
    registered = await register.flush(register.register_from(settings))
    return TickReport(
        flagged_due_soon=flags.count(Attention.DUE_SOON),
        flagged_overdue=flags.count(Attention.OVERDUE),
        open_overdue=open_overdue,
        expired_unverified=expired,
        resumed_after_hold=resumed,
        exports_deleted=exports,
        notifications_sent=sent,
        notifications_failed=failed,
        requester_details_destroyed=destroyed,
        staff_text_sealed=sealed,
        retained_data_erased=released,
        erasures_registered=registered,
    )


#: Timeline entries whose clear note is what staff wrote: older versions kept it so. Today staff
#: text is sealed, and the only clear notes of such entries are cdlm's own words for a hold it
#: found or a duplicate it linked, which are left alone.
_STAFF_NOTES = (
    Q(note__isnull=False)
    & (
        Q(kind="deadline_extended")
        | (
            Q(
                kind="status_changed",
                to_status__in=[Status.DENIED, Status.CANCELLED, Status.ON_HOLD],
            )
            & ~Q(actor_kind=SYSTEM.kind.value)
        )
    )
    & ~Q(note__startswith="legal hold ")
    & ~Q(note__startswith="Duplicate of request ")
)


async def seal_clear_staff_text(vault: Vault) -> int:
    """Seal what staff wrote that older versions of cdlm stored in clear (denial, cancellation,
    hold and extension reasons, and the timeline notes that copied them) under each request's
    key, or drop it where the key is already destroyed; returns how many texts were moved.

    Once they are moved nothing matches any more, so later ticks find nothing to do: cdlm
    writes no clear extension reason, and a clear reason counts as staff's only when a clear
    staff note of the timeline says the same.
    """
    events = await RequestEvent.filter(_STAFF_NOTES)
    staff_written = {
        e.request_id: e.note  # type: ignore[attr-defined]
        for e in events
        if e.kind == "status_changed"
    }
    requests = await DataSubjectRequest.filter(
        Q(extension_reason__isnull=False) | Q(id__in=list(staff_written), reason__isnull=False)
    )
    owners = {r.id for r in requests} | {e.request_id for e in events}  # type: ignore[attr-defined]
    keys = await vault.customer_keys(owners) if owners else {}

    def sealed(request_id: uuid.UUID, text: str) -> bytes | None:
        key = keys.get(request_id)
        return None if key is None else vault.seal(key, request_id, STAFF_TEXT, text)

    moved = 0
    for request in requests:
        changed = []
        if request.extension_reason is not None:
            request.extension_reason_sealed = sealed(request.id, request.extension_reason)
            request.extension_reason = None
            changed += ["extension_reason", "extension_reason_sealed"]
        if request.reason is not None and staff_written.get(request.id) == request.reason:
            set_reason(request, staff_sealed=sealed(request.id, request.reason))
            changed += ["reason", "staff_reason_sealed"]
        if changed:
            await request.save(update_fields=changed)
            moved += len(changed) // 2
    for event in events:
        assert event.note is not None
        request_id: uuid.UUID = event.request_id  # type: ignore[attr-defined]
        event.note_sealed = sealed(request_id, event.note)
        event.note = None
        await event.save(update_fields=["note", "note_sealed"])
        moved += 1
    return moved


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
            set_reason(request, own="Not verified within 30 days.")
            await move(request, Status.CANCELLED, SYSTEM, note=request.reason)
            await destroy_request_secrets(vault, [request.id])
            closed += 1
    return closed


async def _erase_what_ended_holds_kept(vault: Vault) -> int:
    """Finish the erasures legal holds interrupted, where the holds have ended; returns how
    many requests had data erased now."""
    # Only requests with something still kept: more categories retained than released.
    rows = await get_connection("default").execute_query_dict(
        'SELECT "id" FROM "dsr_requests" WHERE "type" = $1 AND "status" = $2 AND '
        "jsonb_array_length(COALESCE(\"progress\"::jsonb #> '{steps,plan,retained}', '[]')) > "
        "(SELECT count(*) FROM jsonb_object_keys("
        "COALESCE(\"progress\"::jsonb -> 'released', '{}')))",
        [RequestType.ERASURE.value, Status.COMPLETED.value],
    )
    finished = 0
    for row in rows:
        async with in_transaction():
            request = await locked(row["id"])
            if erasure.awaiting_release(request) and await erasure.erase_released(vault, request):
                finished += 1
    return finished


async def _resume_after_holds() -> int:
    """Send requests held by a legal hold that has ended back to approved."""
    resumed = 0
    for request in await DataSubjectRequest.filter(status=Status.ON_HOLD):
        held_by = request.progress.get("held_by")
        if held_by is None or await legal_holds.is_active(uuid.UUID(held_by)):
            continue
        async with in_transaction():
            current = await locked(request.id)
            if current.status is not Status.ON_HOLD:
                continue
            current.progress = {k: v for k, v in current.progress.items() if k != "held_by"}
            set_reason(current)
            await move(current, Status.APPROVED, SYSTEM, note=f"legal hold {held_by} ended")
            resumed += 1
    return resumed
