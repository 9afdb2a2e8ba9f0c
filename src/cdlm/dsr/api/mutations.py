"""Staff mutations of data subject requests."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.core.jurisdictions import Jurisdiction
from cdlm.core.principal import Principal
from cdlm.customers.api.mutations import ProfileChangesInput
from cdlm.dsr import access, execution, intake, service
from cdlm.dsr.api.public import RequesterIdentifierInput, details_of
from cdlm.dsr.api.types import FILERS, HANDLERS, DataSubjectRequestNode
from cdlm.dsr.models import DataSubjectRequest, RequestType, VerificationMethod
from cdlm.dsr.notifier import Notifier
from cdlm.dsr.workflow import Status
from cdlm.graphql.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    PolicyViolationError,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.scalars import parse_id
from cdlm.vault.service import Vault


@strawberry.input(description="A request received by letter, phone or in person.")
class FileDataSubjectRequestInput:
    type: RequestType
    identifier: RequesterIdentifierInput = strawberry.field(
        description="How to reach the requester (email or phone) or their external id."
    )
    verification_method: VerificationMethod = strawberry.field(
        description="How the requester's identity was checked."
    )
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="The customer, when known (else matched by identifier)."
    )
    jurisdiction: Jurisdiction | None = None
    received_at: datetime | None = strawberry.field(
        default=None, description="When it was received (default: now); starts the clock."
    )
    corrections: ProfileChangesInput | None = None
    purposes: list[str] | None = None
    note: str | None = None


@strawberry.input(description="Approve, deny, cancel, hold, or approve again after a hold.")
class ChangeDataSubjectRequestStatusInput:
    id: strawberry.ID
    status: Status = strawberry.field(description="APPROVED, DENIED, CANCELLED or ON_HOLD.")
    reason: str | None = strawberry.field(
        default=None, description="Required to deny, cancel or hold; the requester sees a denial's."
    )


@strawberry.input
class ExtendDataSubjectRequestInput:
    id: strawberry.ID
    reason: str = strawberry.field(description="Told to the requester (GDPR Art. 12(3)).")


@strawberry.input
class AssignDataSubjectRequestInput:
    id: strawberry.ID
    assignee_id: strawberry.ID | None = strawberry.field(description="Null: unassign.")


@strawberry.input
class ExecuteDataSubjectRequestInput:
    id: strawberry.ID


@strawberry.type
class DataSubjectRequestSaved:
    request: DataSubjectRequestNode
    replayed: bool = False


RequestResult = Annotated[
    DataSubjectRequestSaved
    | ValidationError
    | NotFoundError
    | InvalidStateError
    | PolicyViolationError
    | ConflictError,
    strawberry.union("DataSubjectRequestResult"),
]


async def _saved(request_id: Any, replayed: bool = False) -> DataSubjectRequestSaved:
    row = await service.get(request_id)
    return DataSubjectRequestSaved(request=DataSubjectRequestNode.from_row(row), replayed=replayed)


Work = Callable[
    [Principal, Vault, AuthSettings, Settings, Notifier, uuid.UUID],
    Awaitable[DataSubjectRequest],
]


async def _work_on(
    info: Info[Any, Any], request_id: strawberry.ID, work: Work
) -> DataSubjectRequestSaved:
    """Run a piece of request work that needs the whole context, and show the result."""
    context = info.context
    row = await work(
        await require_principal(info),
        context.vault,
        context.auth,
        context.settings,
        context.notifier,
        parse_id(request_id, "input.id"),
    )
    return await _saved(row.id)


@strawberry.type
class DsrMutation:
    @strawberry.mutation(
        description="File a request on someone's behalf, saying how their identity was checked.",
        extensions=allow(*FILERS),
    )
    @errors_as_data
    async def file_data_subject_request(
        self,
        info: Info[Any, Any],
        input: FileDataSubjectRequestInput,
        idempotency_key: str | None = None,
    ) -> RequestResult:
        context = info.context
        filing = intake.Filing(
            type=input.type,
            subject=intake.Subject(input.identifier.kind, input.identifier.value),
            verification_method=input.verification_method,
            details=details_of(input.corrections, input.purposes, input.note),
            jurisdiction=input.jurisdiction,
            customer_id=parse_id(input.customer_id, "input.customerId")
            if input.customer_id
            else None,
            received_at=input.received_at,
        )
        done = await intake.file_request(
            await require_principal(info),
            context.vault,
            context.settings,
            context.notifier,
            filing,
            idempotency_key,
        )
        return await _saved(done.request_id, done.replayed)

    @strawberry.mutation(
        description="Approve, deny (told to the requester), cancel or put on hold.",
        extensions=allow(*HANDLERS),
    )
    @errors_as_data
    async def change_data_subject_request_status(
        self, info: Info[Any, Any], input: ChangeDataSubjectRequestStatusInput
    ) -> RequestResult:
        row = await service.decide(
            await require_principal(info),
            info.context.vault,
            info.context.notifier,
            parse_id(input.id, "input.id"),
            input.status,
            input.reason,
        )
        return await _saved(row.id)

    @strawberry.mutation(
        description="Use the one extension the law allows (GDPR: 2 months, CCPA: 45 days).",
        extensions=allow(*HANDLERS),
    )
    @errors_as_data
    async def extend_data_subject_request_deadline(
        self, info: Info[Any, Any], input: ExtendDataSubjectRequestInput
    ) -> RequestResult:
        row = await service.extend(
            await require_principal(info),
            info.context.vault,
            info.context.notifier,
            parse_id(input.id, "input.id"),
            input.reason,
        )
        return await _saved(row.id)

    @strawberry.mutation(
        description="Give a request to a staff member.", extensions=allow(*HANDLERS)
    )
    @errors_as_data
    async def assign_data_subject_request(
        self, info: Info[Any, Any], input: AssignDataSubjectRequestInput
    ) -> RequestResult:
        row = await service.assign(
            await require_principal(info),
            parse_id(input.id, "input.id"),
            parse_id(input.assignee_id, "input.assigneeId") if input.assignee_id else None,
        )
        return await _saved(row.id)

    @strawberry.mutation(
        description="Send the requester a new link to the copy of their data (old links stop).",
        extensions=allow(*HANDLERS),
    )
    @errors_as_data
    async def resend_data_subject_request_export_link(
        self, info: Info[Any, Any], input: ExecuteDataSubjectRequestInput
    ) -> RequestResult:
        return await _work_on(info, input.id, access.resend_link)

    @strawberry.mutation(
        description="Carry out an approved request, or resume a failed one where it stopped.",
        extensions=allow(*HANDLERS),
    )
    @errors_as_data
    async def execute_data_subject_request(
        self, info: Info[Any, Any], input: ExecuteDataSubjectRequestInput
    ) -> RequestResult:
        return await _work_on(info, input.id, execution.execute)
