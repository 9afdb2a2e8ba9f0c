"""Data subject requests: their clock, status changes with timeline, staff decisions and reads.

Intake (submission and verification) is in :mod:`cdlm.dsr.intake`, carrying a request out in
:mod:`cdlm.dsr.execution`. Every status change goes through :func:`move`, which checks the
workflow, keeps the legal clock (paused while the request waits on the requester) and writes
the timeline entry in the same transaction.
"""

from __future__ import annotations

import statistics
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from tortoise.expressions import Q
from tortoise.functions import Count
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.auth import service as staff
from cdlm.core import clock
from cdlm.core.errors import InvalidStateTransition, NotFound
from cdlm.core.identifiers import Identifier, IdentifierKind
from cdlm.core.jurisdictions import ClockRule
from cdlm.core.principal import Principal
from cdlm.core.text import staff_text
from cdlm.dsr import outbox
from cdlm.dsr.deadlines import Pause, RequestClock
from cdlm.dsr.models import DataSubjectRequest, RequestEvent, RequestType, TimelineKind
from cdlm.dsr.notifier import Notifier
from cdlm.dsr.workflow import FINAL, WAITING_ON_REQUESTER, PublicStatus, Status, check_transition
from cdlm.dsr.workflow import public_status as public_status_of
from cdlm.vault.service import Vault

#: Statuses a staff member may set directly; the others follow from verification and execution.
DECISIONS = frozenset({Status.APPROVED, Status.DENIED, Status.CANCELLED, Status.ON_HOLD})
_NEEDS_REASON = frozenset({Status.DENIED, Status.CANCELLED, Status.ON_HOLD})
#: Where a request is "open": the work is not finished.
OPEN = frozenset(Status) - FINAL


def clock_running() -> Q:
    """Open requests whose legal clock runs (their stored due date is current)."""
    return Q(status__in=list(OPEN), clock_paused=False)


#: How a requester identified by each kind of identifier is written to.
CHANNELS = {IdentifierKind.EMAIL: "email", IdentifierKind.PHONE: "sms"}


# ----------------------------------------------------------------------------- the clock


def _pauses(stored: list[list[str | None]]) -> tuple[Pause, ...]:
    """Pauses as the request stores them: ``[start, end or None]`` in ISO 8601."""
    return tuple(
        Pause(datetime.fromisoformat(start or ""), datetime.fromisoformat(end) if end else None)
        for start, end in stored
    )


def clock_of(request: DataSubjectRequest) -> RequestClock:
    """The request's legal clock, with the rule it was received under."""
    return RequestClock(
        request.received_at,
        request.jurisdiction,
        _pauses(request.pauses),
        request.extended,
        ClockRule.from_json(request.clock_rule),
    )


def keep_clock(request: DataSubjectRequest, kept: RequestClock, now: datetime) -> None:
    """Store ``kept`` on the request, with the due date as of ``now``."""
    request.pauses = [
        [p.started_at.isoformat(), p.ended_at.isoformat() if p.ended_at else None]
        for p in kept.pauses
    ]
    request.extended = kept.extended
    request.clock_paused = kept.paused()
    request.due_at = kept.due_at(now)


def public_status(request: DataSubjectRequest, original: DataSubjectRequest | None) -> PublicStatus:
    """What the requester sees; a duplicate shows the status of the request it duplicates."""
    if original is not None:
        return public_status_of(original.status)
    if request.status is Status.CANCELLED and request.progress.get("expired"):
        return PublicStatus.EXPIRED  # never verified
    expires = request.progress.get("verification_expires_at")
    expired = (
        request.status is Status.IDENTITY_PENDING
        and expires is not None
        and datetime.fromisoformat(expires) < clock.now()
    )
    return public_status_of(request.status, verification_expired=expired)


async def public_status_now(request: DataSubjectRequest) -> PublicStatus:
    """:func:`public_status`, loading the original of a duplicate."""
    original = (
        await DataSubjectRequest.get_or_none(id=request.duplicate_of_id)
        if request.duplicate_of_id is not None
        else None
    )
    return public_status(request, original)


@dataclass(frozen=True)
class PublicView:
    """A request as its requester may follow it."""

    request_id: uuid.UUID
    type: RequestType
    status: PublicStatus
    received_at: datetime
    due_at: datetime


async def public_view(request_id: uuid.UUID) -> PublicView | None:
    """The requester's view of a request (a duplicate shows its original's progress)."""
    request = await DataSubjectRequest.get_or_none(id=request_id)
    if request is None:
        return None
    original = (
        await DataSubjectRequest.get_or_none(id=request.duplicate_of_id)
        if request.duplicate_of_id is not None
        else None
    )
    followed = original or request
    return PublicView(
        request.id,
        request.type,
        public_status(request, original),
        request.received_at,
        clock_of(followed).due_at(clock.now()),
    )


# -------------------------------------------------------------------- moves and timeline


@dataclass(frozen=True)
class NewTimelineEntry:
    """What happened to a request: ``note`` in cdlm's own words, ``note_sealed`` what staff
    wrote (see :func:`seal_staff_text`), and for a status change the statuses before and
    after."""

    kind: TimelineKind
    note: str | None = None
    note_sealed: bytes | None = None
    from_status: Status | None = None
    to_status: Status | None = None


async def add_event(actor: Principal, request: DataSubjectRequest, entry: NewTimelineEntry) -> None:
    """Append to the request's timeline (in the caller's transaction)."""
    await RequestEvent.create(
        request_id=request.id,
        at=clock.now(),
        kind=entry.kind,
        from_status=entry.from_status,
        to_status=entry.to_status,
        actor_kind=actor.kind.value,
        actor_id=actor.id,
        note=entry.note,
        note_sealed=entry.note_sealed,
    )


#: The vault purpose of what staff write about a request.
STAFF_TEXT = "staff-text"


async def seal_staff_text(vault: Vault, request_id: uuid.UUID, text: str | None) -> bytes | None:
    """What staff wrote about a request, sealed under the request's key: destroyed with it,
    never stored or logged in clear."""
    if text is None:
        return None
    return vault.seal(await vault.customer_key(request_id), request_id, STAFF_TEXT, text)


def open_staff_text(
    vault: Vault, keys: dict[uuid.UUID, bytes], request_id: uuid.UUID, sealed: bytes | None
) -> str | None:
    """:func:`seal_staff_text`'s text, or None once the request's key is destroyed."""
    if sealed is None or request_id not in keys:
        return None
    text: str = vault.open(keys[request_id], request_id, STAFF_TEXT, bytes(sealed))
    return text


async def destroy_request_secrets(vault: Vault, request_ids: list[uuid.UUID]) -> int:
    """Destroy the requests' keys and empty every column sealed under them (the requester's
    details, what they asked, what staff wrote): the requests stay as records. Returns how
    many keys were destroyed now."""
    if not request_ids:
        return 0
    destroyed = sum([await vault.shred(request_id) for request_id in request_ids])
    await DataSubjectRequest.filter(id__in=request_ids).update(
        subject_sealed=None,
        details_sealed=None,
        staff_reason_sealed=None,
        extension_reason_sealed=None,
    )
    await RequestEvent.filter(request_id__in=request_ids, note_sealed__isnull=False).update(
        note_sealed=None
    )
    return destroyed


def set_reason(
    request: DataSubjectRequest, *, own: str | None = None, staff_sealed: bytes | None = None
) -> None:
    """Replace the request's reason: cdlm's ``own`` words, or what staff wrote (sealed)."""
    request.reason = own[:500] if own is not None else None
    request.staff_reason_sealed = staff_sealed


async def move(
    request: DataSubjectRequest,
    target: Status,
    actor: Principal,
    note: str | None = None,
    *,
    note_sealed: bytes | None = None,
) -> None:
    """Change the status (refused unless the workflow allows it), keep the clock, write the
    timeline and save the request (in the caller's transaction)."""
    check_transition(request.status, target)
    now = clock.now()
    kept = clock_of(request)
    kept = kept.pause(now) if target in WAITING_ON_REQUESTER else kept.resume(now)
    keep_clock(request, kept, now)
    previous = request.status
    request.status = target
    request.updated_at = now
    if target in FINAL:
        request.completed_at = now  # when it was closed, whichever way
        request.attention = None
    await request.save()
    changed = NewTimelineEntry(TimelineKind.STATUS_CHANGED, note, note_sealed, previous, target)
    await add_event(actor, request, changed)
    await audit.record(
        actor, f"dsr.{target.value}", target_type="data_subject_request", target_id=request.id
    )


async def locked(request_id: uuid.UUID, field: str = "input.id") -> DataSubjectRequest:
    """The request, locked for change until the transaction ends; :class:`NotFound` if none."""
    request = await DataSubjectRequest.filter(id=request_id).select_for_update().first()
    if request is None:
        raise NotFound("No data subject request has this id.", field=field)
    return request


def message_variables(request: DataSubjectRequest, **extra: str) -> dict[str, str]:
    """What every notification about ``request`` can say."""
    return {
        "request_id": str(request.id),
        "request_type": request.type.value.replace("_", " "),
        "received_at": request.received_at.date().isoformat(),
        "due_at": request.due_at.date().isoformat(),
        **extra,
    }


@dataclass(frozen=True)
class Requester:
    """The identifier the requester gave, and the request key it is sealed under."""

    key: bytes
    identifier: Identifier

    @property
    def kind(self) -> IdentifierKind:
        return self.identifier.kind

    @property
    def value(self) -> str:
        return self.identifier.value


def subject_json(identifier: Identifier) -> dict[str, str]:
    """The requester's identifier as sealed with the request."""
    return {"kind": identifier.kind.value, "namespace": identifier.namespace,
            "value": identifier.value}  # fmt: skip


def subject_of(sealed: dict[str, str]) -> Identifier:
    """The identifier :func:`subject_json` sealed (requests sealed before namespaces were kept
    have none: their external ids cannot be matched again)."""
    return Identifier(IdentifierKind(sealed["kind"]), sealed.get("namespace", ""), sealed["value"])


async def requester(vault: Vault, request: DataSubjectRequest) -> Requester | None:
    """Who asked, opened from the request; None once their details are destroyed."""
    keys = await vault.customer_keys([request.id])
    if request.id not in keys or request.subject_sealed is None:
        return None
    subject = vault.open(keys[request.id], request.id, "subject", request.subject_sealed)
    return Requester(keys[request.id], subject_of(subject))


async def notify_requester(
    vault: Vault, request: DataSubjectRequest, template: str, **extra: str
) -> bool:
    """Queue a message to the requester (in the caller's transaction); False when their
    contact details are gone (an erased requester) or cannot be written to (an external
    id)."""
    found = await requester(vault, request)
    channel = CHANNELS.get(found.kind) if found is not None else None
    if found is None or channel is None:
        return False
    variables = message_variables(request, **extra)
    message = outbox.OutboxMessage(request.id, channel, found.value, template, variables)
    await outbox.queue(vault, found.key, message)
    return True


# ------------------------------------------------------------------------ staff decisions


async def decide(
    actor: Principal,
    vault: Vault,
    notifier: Notifier,
    request_id: uuid.UUID,
    target: Status,
    reason: str | None,
) -> DataSubjectRequest:
    """Approve, deny, cancel, put on hold or (from on hold) approve again.

    A denial is told to the requester with its reason (GDPR Art. 12(4)).
    """
    if target not in DECISIONS:
        raise InvalidStateTransition(
            "Staff set approved, denied, cancelled or on hold; verification and execution "
            "set the other statuses.",
            field="input.status",
        )
    text = staff_text(reason, "input.reason", required=target in _NEEDS_REASON)
    async with in_transaction():
        request = await locked(request_id)
        check_transition(request.status, target, "input.status")  # before sealing the reason
        sealed = await seal_staff_text(vault, request.id, text)
        set_reason(request, staff_sealed=sealed if target in _NEEDS_REASON else None)
        await move(request, target, actor, note_sealed=sealed)
        if target is Status.DENIED:
            await notify_requester(vault, request, "request_denied", reason=text or "")
    await outbox.deliver_pending(vault, notifier, [request.id])
    return request


async def extend(
    actor: Principal, vault: Vault, notifier: Notifier, request_id: uuid.UUID, reason: str | None
) -> DataSubjectRequest:
    """Use the one extension the law allows, with its reason, and tell the requester."""
    text = staff_text(reason, "input.reason", required=True)
    async with in_transaction():
        request = await locked(request_id)
        now = clock.now()
        current = clock_of(request)
        if request.status in FINAL:
            raise InvalidStateTransition("The request is closed.", field="input.id")
        if not current.rule.extendable:
            raise InvalidStateTransition(
                f"{request.jurisdiction.value.upper()} allows no extension.", field="input.id"
            )
        if request.extended:
            raise InvalidStateTransition("The deadline was already extended.", field="input.id")
        if not current.can_extend(now):
            raise InvalidStateTransition(
                "The deadline has passed; it can no longer be extended.", field="input.id"
            )
        keep_clock(request, current.extend(), now)
        sealed = await seal_staff_text(vault, request.id, text)
        request.extension_reason_sealed = sealed
        request.updated_at = now
        request.attention = None
        await request.save()
        await add_event(
            actor, request, NewTimelineEntry(TimelineKind.DEADLINE_EXTENDED, note_sealed=sealed)
        )
        await audit.record(
            actor, "dsr.extend", target_type="data_subject_request", target_id=request.id
        )
        await notify_requester(vault, request, "deadline_extended", reason=text or "")
    await outbox.deliver_pending(vault, notifier, [request.id])
    return request


async def assign(
    actor: Principal, request_id: uuid.UUID, assignee_id: uuid.UUID | None
) -> DataSubjectRequest:
    """Give the request to a staff member (or to nobody)."""
    if assignee_id is not None and not await staff.is_active_staff(assignee_id):
        raise NotFound("No active staff user has this id.", field="input.assigneeId")
    async with in_transaction():
        request = await locked(request_id)
        if request.status in FINAL:
            raise InvalidStateTransition("The request is closed.", field="input.id")
        request.assignee_id = assignee_id
        request.updated_at = clock.now()
        await request.save(update_fields=["assignee_id", "updated_at"])
        note = f"to {assignee_id}" if assignee_id else "unassigned"
        await add_event(actor, request, NewTimelineEntry(TimelineKind.ASSIGNED, note))
        await audit.record(
            actor, "dsr.assign", target_type="data_subject_request", target_id=request.id
        )
    return request


# ---------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class RequestFilter:
    """Criteria of the request list; all optional, combined with AND."""

    status: Status | None = None
    type: RequestType | None = None
    overdue: bool | None = None
    assignee_id: uuid.UUID | None = None
    customer_id: uuid.UUID | None = None


def requests(criteria: RequestFilter) -> QuerySet[DataSubjectRequest]:
    """Requests matching ``criteria`` (paginate it)."""
    query = DataSubjectRequest.all()
    if criteria.status is not None:
        query = query.filter(status=criteria.status)
    if criteria.type is not None:
        query = query.filter(type=criteria.type)
    if criteria.assignee_id is not None:
        query = query.filter(assignee_id=criteria.assignee_id)
    if criteria.customer_id is not None:
        query = query.filter(customer_id=criteria.customer_id)
    if criteria.overdue is not None:
        # A paused request's stored due date is stale but it is never overdue; an open one
        # keeps its due date current (every pause, resumption and extension re-stores it).
        late = clock_running() & Q(due_at__lt=clock.now())
        query = query.filter(late) if criteria.overdue else query.exclude(late)
    return query


async def get(request_id: uuid.UUID, field: str = "id") -> DataSubjectRequest:
    """One request; :class:`NotFound` when there is none."""
    request = await DataSubjectRequest.get_or_none(id=request_id)
    if request is None:
        raise NotFound("No data subject request has this id.", field=field)
    return request


@dataclass(frozen=True)
class TimelineEntry:
    """One timeline entry as read: its note in cdlm's words, or what staff wrote (opened; None
    once the request's key is destroyed)."""

    at: datetime
    kind: TimelineKind
    from_status: Status | None
    to_status: Status | None
    actor_kind: str
    actor_id: uuid.UUID | None
    note: str | None
    by_staff: bool = False  #: the note is what staff wrote (else cdlm's own words)


async def timelines(
    vault: Vault, request_ids: list[uuid.UUID]
) -> dict[uuid.UUID, list[TimelineEntry]]:
    """Each request's timeline, oldest first (two queries: the entries and the keys)."""
    grouped: dict[uuid.UUID, list[TimelineEntry]] = {r: [] for r in request_ids}
    rows = await RequestEvent.filter(request_id__in=request_ids).order_by("id")
    sealed = {e.request_id for e in rows if e.note_sealed is not None}  # type: ignore[attr-defined]
    keys = await vault.customer_keys(sealed) if sealed else {}
    for event in rows:
        request_id: uuid.UUID = event.request_id  # type: ignore[attr-defined]
        grouped[request_id].append(
            TimelineEntry(
                event.at,
                TimelineKind(event.kind),
                event.from_status,
                event.to_status,
                event.actor_kind,
                event.actor_id,
                event.note
                if event.note_sealed is None
                else open_staff_text(vault, keys, request_id, event.note_sealed),
                by_staff=event.note_sealed is not None,
            )
        )
    return grouped


@dataclass(frozen=True)
class Reasons:
    """A request's reason and extension reason as read (staff's opened, or cdlm's own)."""

    reason: str | None
    extension_reason: str | None
    staff_reason: bool = False  #: ``reason`` is what staff wrote (else cdlm's own words)


async def reasons(vault: Vault, requests: list[DataSubjectRequest]) -> dict[uuid.UUID, Reasons]:
    """Each request's reasons (one query for the keys of those with staff text)."""
    sealed = [
        r.id
        for r in requests
        if r.staff_reason_sealed is not None or r.extension_reason_sealed is not None
    ]
    keys = await vault.customer_keys(sealed) if sealed else {}
    return {
        r.id: Reasons(
            open_staff_text(vault, keys, r.id, r.staff_reason_sealed) or r.reason,
            open_staff_text(vault, keys, r.id, r.extension_reason_sealed),
            staff_reason=r.staff_reason_sealed is not None,
        )
        for r in requests
    }


async def by_ids(request_ids: list[uuid.UUID]) -> dict[uuid.UUID, DataSubjectRequest]:
    """Requests by id (one query)."""
    return {r.id: r for r in await DataSubjectRequest.filter(id__in=request_ids)}


@dataclass(frozen=True)
class Metrics:
    """How the request work stands."""

    open: int
    overdue: int
    due_soon: int
    completed: int
    median_days_to_complete: float | None
    by_status: dict[Status, int]
    by_type: dict[RequestType, int]


async def metrics(due_soon_days: int, window_start: datetime | None = None) -> Metrics:
    """Counts by status and type, overdue and due-soon counts, and the median days from
    receipt to completion, less the time spent waiting on the requester (of requests
    received since ``window_start``, or all)."""
    now = clock.now()
    base = DataSubjectRequest.all()
    if window_start is not None:
        base = base.filter(received_at__gte=window_start)
    by_status = {
        Status(row["status"]): row["n"]
        for row in await base.annotate(n=Count("id")).group_by("status").values("status", "n")
    }
    by_type = {
        RequestType(row["type"]): row["n"]
        for row in await base.annotate(n=Count("id")).group_by("type").values("type", "n")
    }
    running = base.filter(clock_running())
    overdue = await running.filter(due_at__lt=now).count()
    soon = await running.filter(
        due_at__gte=now, due_at__lt=now + timedelta(days=due_soon_days)
    ).count()
    spans = await base.filter(status=Status.COMPLETED, completed_at__isnull=False).values_list(
        "received_at", "completed_at", "pauses"
    )
    # The time the requester took (to verify) is not the controller's time.
    days = [
        (
            done - received - sum((p.length(done) for p in _pauses(pauses)), timedelta(0))
        ).total_seconds()
        / 86_400
        for received, done, pauses in spans
    ]
    return Metrics(
        open=sum(n for status, n in by_status.items() if status in OPEN),
        overdue=overdue,
        due_soon=soon,
        completed=by_status.get(Status.COMPLETED, 0),
        median_days_to_complete=round(statistics.median(days), 2) if days else None,
        by_status=by_status,
        by_type=by_type,
    )
