"""GraphQL types of data subject requests."""

from datetime import datetime
from typing import Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types.info import Info

from cdlm.core import clock as clock_module
from cdlm.core.jurisdictions import Jurisdiction
from cdlm.core.personal_data import PersonalData
from cdlm.core.roles import Role
from cdlm.dsr import loaders, service
from cdlm.dsr.models import (
    DataSubjectRequest,
    FiledVia,
    RequestType,
    VerificationMethod,
)
from cdlm.dsr.workflow import FINAL, PublicStatus, Status
from cdlm.graphql.masking import personal
from cdlm.graphql.vocabulary import IdentifierKind

strawberry.enum(RequestType, name="DataSubjectRequestType", description="The right exercised.")
strawberry.enum(Jurisdiction, description="The law a request is handled under.")
strawberry.enum(Status, name="RequestStatus", description="Where a request is in its workflow.")
strawberry.enum(
    PublicStatus,
    name="PublicRequestStatus",
    description="The requester's view of the status (Data Rights Protocol).",
)
strawberry.enum(VerificationMethod, description="How the requester's identity was established.")
strawberry.enum(FiledVia, description="Who filed the request.")

#: Enums registered above, for the other API modules (so registration happens first).
__all__ = ["Jurisdiction", "PublicStatus", "RequestType", "Status", "VerificationMethod"]

HANDLERS = (Role.ADMIN, Role.PRIVACY_OFFICER)
FILERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.AGENT)


@strawberry.type(description="One entry of a request's timeline.")
class RequestTimelineEntry:
    at: datetime
    kind: str = strawberry.field(
        description="received, status_changed, step_done, deadline_extended, due_soon, ..."
    )
    from_status: Status | None
    to_status: Status | None
    actor_kind: str
    actor_id: strawberry.ID | None
    note: str | None = strawberry.field(
        description="cdlm's note, or what staff wrote (null once the request's key is destroyed)."
    )

    @classmethod
    def of(cls, entry: service.TimelineEntry) -> "RequestTimelineEntry":
        return cls(
            at=entry.at,
            kind=entry.kind,
            from_status=entry.from_status,
            to_status=entry.to_status,
            actor_kind=entry.actor_kind,
            actor_id=strawberry.ID(str(entry.actor_id)) if entry.actor_id else None,
            note=entry.note,
        )


@strawberry.type(name="DataSubjectRequest", description="A data subject request.")
class DataSubjectRequestNode:
    id: strawberry.ID
    type: RequestType
    jurisdiction: Jurisdiction
    status: Status
    filed_via: FiledVia
    subject_kind: IdentifierKind
    customer_id: strawberry.ID | None = strawberry.field(description="The matched customer.")
    received_at: datetime
    verified_at: datetime | None
    completed_at: datetime | None = strawberry.field(
        description="When it was closed (completed, denied or cancelled)."
    )
    verification_method: VerificationMethod | None
    due_at: datetime = strawberry.field(description="Counting pauses and any extension.")
    days_left: int | None = strawberry.field(
        description="Whole days to the due date; negative: late; null once closed."
    )
    overdue: bool
    paused: bool = strawberry.field(description="The clock waits on the requester.")
    extended: bool
    acknowledge_by: datetime | None = strawberry.field(
        description="When receipt must be confirmed (CCPA: 10 business days)."
    )
    assignee_id: strawberry.ID | None
    duplicate_of_id: strawberry.ID | None
    attention: str | None = strawberry.field(description="due_soon or overdue, set by the tick.")
    certificate: JSON | None = strawberry.field(description="Erasure certificate.")
    row: strawberry.Private[DataSubjectRequest]

    @classmethod
    def from_row(cls, row: DataSubjectRequest) -> "DataSubjectRequestNode":
        clock = service.clock_of(row)
        now = clock_module.now()
        return cls(
            id=strawberry.ID(str(row.id)),
            type=row.type,
            jurisdiction=row.jurisdiction,
            status=row.status,
            filed_via=row.filed_via,
            subject_kind=row.subject_kind,
            customer_id=strawberry.ID(str(row.customer_id)) if row.customer_id else None,
            received_at=row.received_at,
            verified_at=row.verified_at,
            completed_at=row.completed_at,
            verification_method=row.verification_method,
            due_at=clock.due_at(now),
            days_left=None if row.status in FINAL else clock.days_left(now),
            overdue=row.status not in FINAL and clock.overdue(now),
            paused=clock.paused(),
            extended=row.extended,
            acknowledge_by=row.acknowledge_by,
            assignee_id=strawberry.ID(str(row.assignee_id)) if row.assignee_id else None,
            duplicate_of_id=strawberry.ID(str(row.duplicate_of_id))
            if row.duplicate_of_id
            else None,
            attention=row.attention,
            certificate=row.certificate,  # type: ignore[arg-type]
            row=row,
        )

    @strawberry.field(
        description="The email or phone the requester gave (null once destroyed).",
        extensions=personal(PersonalData.IDENTIFIER),
    )
    async def subject(self, info: Info[Any, Any]) -> str | None:
        value: str | None = await info.context.loaders.get(
            loaders.subject_by_request, info.context.vault
        ).load(self.row)
        info.context.audit_read(
            [self.row.id], ["subject"], action="dsr.read", target_type="data_subject_request"
        )
        return value

    @strawberry.field(
        description="Why it was denied, cancelled, put on hold or failed (what staff wrote is "
        "stored sealed and is null once the request's key is destroyed)."
    )
    async def reason(self, info: Info[Any, Any]) -> str | None:
        return (await self._reasons(info)).reason

    @strawberry.field(description="Why the deadline was extended (null once destroyed).")
    async def extension_reason(self, info: Info[Any, Any]) -> str | None:
        return (await self._reasons(info)).extension_reason

    async def _reasons(self, info: Info[Any, Any]) -> service.Reasons:
        loader = info.context.loaders.get(loaders.reasons_by_request, info.context.vault)
        found: service.Reasons = await loader.load(self.row)
        return found

    @strawberry.field(description="What the requester sees.")
    async def public_status(self, info: Info[Any, Any]) -> PublicStatus:
        original = None
        if self.row.duplicate_of_id is not None:
            original = await info.context.loaders.get(loaders.requests_by_id).load(
                self.row.duplicate_of_id
            )
        return service.public_status(self.row, original)

    @strawberry.field(description="Every change, step and note, oldest first.")
    async def timeline(self, info: Info[Any, Any]) -> list[RequestTimelineEntry]:
        entries = await info.context.loaders.get(
            loaders.timeline_by_request, info.context.vault
        ).load(self.row.id)
        return [RequestTimelineEntry.of(e) for e in entries]

    @strawberry.field(description="Execution steps done, with their results (ids and counts).")
    def progress(self) -> JSON:
        steps: JSON = dict(self.row.progress.get("steps", {}))  # type: ignore[assignment]
        return steps
