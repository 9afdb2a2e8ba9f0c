"""Staff mutations of data subject requests: each has its own input, result union and success
payload, which carries the request as it is after the change."""

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.core.errors import ErrorCode, ValidationFailed
from cdlm.core.jurisdictions import Jurisdiction
from cdlm.core.principal import Principal
from cdlm.customers.api.mutations import ProfileChangesInput
from cdlm.dsr import access, execution, intake, service
from cdlm.dsr.api.public import IDEMPOTENCY_KEY, RequesterIdentifierInput, details_of
from cdlm.dsr.api.types import FILERS, HANDLERS, TYPE_NAME, DataSubjectRequestNode
from cdlm.dsr.models import DataSubjectRequest, RequestType, VerificationMethod
from cdlm.dsr.notifier import Notifier
from cdlm.dsr.workflow import Status
from cdlm.graphql.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    Outcomes,
    PolicyViolationError,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.relay import parse_id, parse_optional_id
from cdlm.vault.service import Vault

_REQUEST_ID = "The request's global id."


# ---------------------------------------------------------------------------- inputs


@strawberry.input(
    description="A request received by letter, phone or in person, filed on the requester's behalf."
)
class FileDataSubjectRequestInput:
    type: RequestType = strawberry.field(description="The right exercised.")
    identifier: RequesterIdentifierInput = strawberry.field(
        description="How to reach the requester (email or phone) or their external id."
    )
    verification_method: VerificationMethod = strawberry.field(
        description="How the requester's identity was checked (NOT_REQUIRED only for an "
        "opt-out of sale)."
    )
    customer_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="The customer the request is about (a Customer id), when staff know it; "
        "omitted or null: matched by the identifier.",
    )
    jurisdiction: Jurisdiction | None = strawberry.field(
        default=None,
        description="The law to handle it under (omitted or null: the installation's, "
        "CDLM_DSR_DEFAULT_JURISDICTION).",
    )
    received_at: datetime | None = strawberry.field(
        default=None,
        description="When it was received, with a time zone, at most a year ago (omitted or "
        "null: now); the legal clock starts then.",
    )
    corrections: ProfileChangesInput | None = strawberry.field(
        default=None,
        description="Rectification only, and required there: the corrected values (omit a "
        "field to leave it, null to have it removed).",
    )
    purposes: list[str] | None = strawberry.field(
        default=None,
        description="Objection only: the purpose codes objected to (omitted, null or empty: "
        "every purpose one may object to).",
    )
    note: str | None = strawberry.field(
        default=None, description="What the requester added (at most 2000 characters)."
    )


@strawberry.input(description="A staff decision on a request.")
class ChangeDataSubjectRequestStatusInput:
    id: strawberry.ID = strawberry.field(description=_REQUEST_ID)
    status: Status = strawberry.field(
        description="APPROVED, DENIED, CANCELLED or ON_HOLD (an ON_HOLD request is resumed "
        "with APPROVED); verification and execution set the other statuses."
    )
    reason: str | None = strawberry.field(
        default=None,
        description="Required to deny, cancel or hold (at most 500 characters); a denial's "
        "reason is sent to the requester. Stored sealed with the request.",
    )


@strawberry.input(description="The one extension of a request's deadline the law allows.")
class ExtendDataSubjectRequestDeadlineInput:
    id: strawberry.ID = strawberry.field(description=_REQUEST_ID)
    reason: str = strawberry.field(
        description="Why more time is needed (at most 500 characters); sent to the requester "
        "(GDPR Art. 12(3))."
    )


@strawberry.input(description="Who works on a request.")
class AssignDataSubjectRequestInput:
    id: strawberry.ID = strawberry.field(description=_REQUEST_ID)
    assignee_id: strawberry.ID | None = strawberry.field(
        default=strawberry.UNSET,
        description="Required: an active staff user (a StaffUser id), or null to unassign.",
    )


@strawberry.input(description="A completed access or portability request whose link to resend.")
class ResendDataSubjectRequestExportLinkInput:
    id: strawberry.ID = strawberry.field(description=_REQUEST_ID)


@strawberry.input(description="The request to carry out.")
class ExecuteDataSubjectRequestInput:
    id: strawberry.ID = strawberry.field(description=_REQUEST_ID)


# -------------------------------------------------------------------------- payloads


@strawberry.type(description="The request was filed, and verified as the input says.")
class DataSubjectRequestFiled:
    request: DataSubjectRequestNode = strawberry.field(
        description="The request (VERIFIED; CANCELLED when it repeats an open request, see "
        "duplicateOf)."
    )
    replayed: bool = strawberry.field(
        description="true: the idempotency key was used before; this is the request it filed "
        "and nothing new was made."
    )


@strawberry.type(description="The request's status changed.")
class DataSubjectRequestStatusChanged:
    request: DataSubjectRequestNode = strawberry.field(description="The request, changed.")


@strawberry.type(description="The deadline was extended and the requester told why.")
class DataSubjectRequestDeadlineExtended:
    request: DataSubjectRequestNode = strawberry.field(
        description="The request, with its new dueAt."
    )


@strawberry.type(description="The request was assigned (or unassigned).")
class DataSubjectRequestAssigned:
    request: DataSubjectRequestNode = strawberry.field(
        description="The request, with its new assignee."
    )


@strawberry.type(description="A new link went to the requester; earlier links stop working.")
class DataSubjectRequestExportLinkResent:
    request: DataSubjectRequestNode = strawberry.field(
        description="The request (progress.sendLink shows when the new link expires)."
    )


@strawberry.type(
    description="The request was carried out as far as it could go: COMPLETED; FAILED when "
    "a step failed (see reason; execute it again to resume); ON_HOLD when a legal hold stops "
    "it."
)
class DataSubjectRequestExecuted:
    request: DataSubjectRequestNode = strawberry.field(
        description="The request, with its status and progress."
    )


_ID_ERRORS = "`input.id` is not a request's id (INVALID_ID)"

FILE = Outcomes(
    "FileDataSubjectRequestResult",
    DataSubjectRequestFiled,
    {
        ValidationError: "the identifier is malformed, the corrections, purposes or note do "
        "not fit the type of request, NOT_REQUIRED is given for another type than an opt-out "
        "of sale, receivedAt is in the future or over a year ago, the customer id is not a "
        "customer's (INVALID_ID) or names no customer, the identifier belongs to another "
        "customer (IDENTITY_CONFLICT), or the idempotency key is empty or too long (every "
        "problem is listed in `issues`)",
        ConflictError: "the idempotency key was used before with other input "
        "(IDEMPOTENCY_MISMATCH)",
    },
)
CHANGE_STATUS = Outcomes(
    "ChangeDataSubjectRequestStatusResult",
    DataSubjectRequestStatusChanged,
    {
        ValidationError: f"{_ID_ERRORS}, or the reason is missing (REQUIRED), malformed or "
        "too long (TOO_LONG)",
        NotFoundError: "no request has this id",
        InvalidStateError: "the status is not one staff set, or the workflow does not allow "
        "the change from the request's status (a closed request changes no more)",
    },
)
EXTEND = Outcomes(
    "ExtendDataSubjectRequestDeadlineResult",
    DataSubjectRequestDeadlineExtended,
    {
        ValidationError: f"{_ID_ERRORS}, or the reason is blank (REQUIRED), malformed or too "
        "long (TOO_LONG)",
        NotFoundError: "no request has this id",
        InvalidStateError: "the request is closed, its law allows no extension, it was "
        "extended already, or its due date has passed",
    },
)
ASSIGN = Outcomes(
    "AssignDataSubjectRequestResult",
    DataSubjectRequestAssigned,
    {
        ValidationError: f"{_ID_ERRORS}, `input.assigneeId` is omitted (REQUIRED) or is not a "
        "staff user's id (INVALID_ID)",
        NotFoundError: "no request has this id (`input.id`), or no active staff user has the "
        "assignee's (`input.assigneeId`)",
        InvalidStateError: "the request is closed",
    },
)
RESEND_LINK = Outcomes(
    "ResendDataSubjectRequestExportLinkResult",
    DataSubjectRequestExportLinkResent,
    {
        ValidationError: _ID_ERRORS,
        NotFoundError: "no request has this id, or its copy was deleted (retention): the "
        "person can ask again",
        InvalidStateError: "the request is not a completed access or portability request",
        PolicyViolationError: "the requester gave no email or phone number to send a link to "
        "(or their details were destroyed)",
    },
)
EXECUTE = Outcomes(
    "ExecuteDataSubjectRequestResult",
    DataSubjectRequestExecuted,
    {
        ValidationError: _ID_ERRORS,
        NotFoundError: "no request has this id",
        InvalidStateError: "the request is not approved, failed or interrupted",
        PolicyViolationError: "no customer is named and the requester's email or phone is "
        "shared by customers kept apart as different people: cancel it and file it again "
        "naming the customer (nothing changed)",
    },
)

FileDataSubjectRequestResult = Annotated[
    DataSubjectRequestFiled | ValidationError | ConflictError, FILE.marker
]
ChangeDataSubjectRequestStatusResult = Annotated[
    DataSubjectRequestStatusChanged | ValidationError | NotFoundError | InvalidStateError,
    CHANGE_STATUS.marker,
]
ExtendDataSubjectRequestDeadlineResult = Annotated[
    DataSubjectRequestDeadlineExtended | ValidationError | NotFoundError | InvalidStateError,
    EXTEND.marker,
]
AssignDataSubjectRequestResult = Annotated[
    DataSubjectRequestAssigned | ValidationError | NotFoundError | InvalidStateError, ASSIGN.marker
]
ResendDataSubjectRequestExportLinkResult = Annotated[
    DataSubjectRequestExportLinkResent
    | ValidationError
    | NotFoundError
    | InvalidStateError
    | PolicyViolationError,
    RESEND_LINK.marker,
]
ExecuteDataSubjectRequestResult = Annotated[
    DataSubjectRequestExecuted
    | ValidationError
    | NotFoundError
    | InvalidStateError
    | PolicyViolationError,
    EXECUTE.marker,
]


Work = Callable[
    [Principal, Vault, AuthSettings, Settings, Notifier, uuid.UUID],
    Awaitable[DataSubjectRequest],
]


async def _work_on(
    info: Info[Any, Any], request_id: strawberry.ID, work: Work
) -> DataSubjectRequestNode:
    """Run a piece of request work that needs the whole context, and show the result."""
    context = info.context
    row = await work(
        await require_principal(info),
        context.vault,
        context.auth,
        context.settings,
        context.notifier,
        parse_id(request_id, "input.id", TYPE_NAME),
    )
    return DataSubjectRequestNode.from_row(row)


def _assignee(given: strawberry.ID | None) -> uuid.UUID | None:
    """The assignee asked for (None: unassign); omitting it is refused (there is nothing to
    keep: the mutation is the change)."""
    if given is strawberry.UNSET:
        raise ValidationFailed(
            "Give the staff user to assign, or null to unassign.",
            field="input.assigneeId",
            code=ErrorCode.REQUIRED,
        )
    return parse_optional_id(given, "input.assigneeId", "StaffUser")


@strawberry.type
class DsrMutation:
    @strawberry.mutation(
        description=FILE.describe(
            "File a request on someone's behalf, saying how their identity was checked; it is "
            "VERIFIED at once (or closed as a duplicate of an open one)."
        ),
        extensions=allow(*FILERS, personal=True),
    )
    @errors_as_data
    async def file_data_subject_request(
        self,
        info: Info[Any, Any],
        input: Annotated[
            FileDataSubjectRequestInput, strawberry.argument(description="The request.")
        ],
        idempotency_key: Annotated[
            str | None, strawberry.argument(description=IDEMPOTENCY_KEY)
        ] = None,
    ) -> FileDataSubjectRequestResult:
        context = info.context
        filing = intake.Filing(
            type=input.type,
            subject=intake.Subject(input.identifier.kind, input.identifier.value),
            verification_method=input.verification_method,
            details=details_of(input.corrections, input.purposes, input.note),
            jurisdiction=input.jurisdiction,
            customer_id=parse_optional_id(input.customer_id, "input.customerId", "Customer"),
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
        row = await service.get(done.request_id)
        return DataSubjectRequestFiled(
            request=DataSubjectRequestNode.from_row(row), replayed=done.replayed
        )

    @strawberry.mutation(
        description=CHANGE_STATUS.describe(
            "Approve, deny (the requester is told why), cancel or put on hold; approve again "
            "to resume a request on hold."
        ),
        extensions=allow(*HANDLERS, personal=True),
    )
    @errors_as_data
    async def change_data_subject_request_status(
        self,
        info: Info[Any, Any],
        input: Annotated[
            ChangeDataSubjectRequestStatusInput,
            strawberry.argument(description="The request and the decision."),
        ],
    ) -> ChangeDataSubjectRequestStatusResult:
        row = await service.decide(
            await require_principal(info),
            info.context.vault,
            info.context.notifier,
            parse_id(input.id, "input.id", TYPE_NAME),
            input.status,
            input.reason,
        )
        return DataSubjectRequestStatusChanged(request=DataSubjectRequestNode.from_row(row))

    @strawberry.mutation(
        description=EXTEND.describe(
            "Use the one extension the law allows (GDPR: 2 months, CCPA: 45 days); the "
            "requester is told why."
        ),
        extensions=allow(*HANDLERS, personal=True),
    )
    @errors_as_data
    async def extend_data_subject_request_deadline(
        self,
        info: Info[Any, Any],
        input: Annotated[
            ExtendDataSubjectRequestDeadlineInput,
            strawberry.argument(description="The request and the reason."),
        ],
    ) -> ExtendDataSubjectRequestDeadlineResult:
        row = await service.extend(
            await require_principal(info),
            info.context.vault,
            info.context.notifier,
            parse_id(input.id, "input.id", TYPE_NAME),
            input.reason,
        )
        return DataSubjectRequestDeadlineExtended(request=DataSubjectRequestNode.from_row(row))

    @strawberry.mutation(
        description=ASSIGN.describe("Give an open request to a staff member, or to nobody."),
        extensions=allow(*HANDLERS, personal=True),
    )
    @errors_as_data
    async def assign_data_subject_request(
        self,
        info: Info[Any, Any],
        input: Annotated[
            AssignDataSubjectRequestInput,
            strawberry.argument(description="The request and its assignee."),
        ],
    ) -> AssignDataSubjectRequestResult:
        request_id = parse_id(input.id, "input.id", TYPE_NAME)
        row = await service.assign(
            await require_principal(info), request_id, _assignee(input.assignee_id)
        )
        return DataSubjectRequestAssigned(request=DataSubjectRequestNode.from_row(row))

    @strawberry.mutation(
        description=RESEND_LINK.describe(
            "Send the requester a new link to the copy of their data (earlier links stop working)."
        ),
        extensions=allow(*HANDLERS, personal=True),
    )
    @errors_as_data
    async def resend_data_subject_request_export_link(
        self,
        info: Info[Any, Any],
        input: Annotated[
            ResendDataSubjectRequestExportLinkInput,
            strawberry.argument(description="The request whose link to resend."),
        ],
    ) -> ResendDataSubjectRequestExportLinkResult:
        request = await _work_on(info, input.id, access.resend_link)
        return DataSubjectRequestExportLinkResent(request=request)

    @strawberry.mutation(
        description=EXECUTE.describe(
            "Carry out an approved request, or resume a failed or interrupted one where it stopped."
        ),
        extensions=allow(*HANDLERS, personal=True),
    )
    @errors_as_data
    async def execute_data_subject_request(
        self,
        info: Info[Any, Any],
        input: Annotated[
            ExecuteDataSubjectRequestInput,
            strawberry.argument(description="The request to carry out."),
        ],
    ) -> ExecuteDataSubjectRequestResult:
        return DataSubjectRequestExecuted(request=await _work_on(info, input.id, execution.execute))
