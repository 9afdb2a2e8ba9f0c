"""The public side of data subject requests: submitting, verifying, following the status.

These need no login (they are on the public allow-list) and are rate-limited per client
address and per identifier; none of them says whether cdlm holds data about anyone.
"""

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.customers.api.mutations import ProfileChangesInput, profile_changes
from cdlm.dsr import intake, service
from cdlm.dsr.api.types import Jurisdiction, PublicStatus, RequestType
from cdlm.graphql.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    RateLimitedError,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.permissions import public
from cdlm.graphql.scalars import parse_id
from cdlm.graphql.vocabulary import IdentifierKind


@strawberry.input(description="How the requester identifies themselves.")
class RequesterIdentifierInput:
    kind: IdentifierKind
    value: str


@strawberry.input
class SubmitDataSubjectRequestInput:
    type: RequestType
    identifier: RequesterIdentifierInput = strawberry.field(
        description="An email or phone number: the verification code is sent there."
    )
    jurisdiction: Jurisdiction | None = strawberry.field(
        default=None, description="Default: the installation's (CDLM_DSR_DEFAULT_JURISDICTION)."
    )
    corrections: ProfileChangesInput | None = strawberry.field(
        default=None, description="Rectification: the corrected values."
    )
    purposes: list[str] | None = strawberry.field(
        default=None, description="Objection: purpose codes (none: every objectable purpose)."
    )
    note: str | None = None


@strawberry.input
class VerifyDataSubjectRequestInput:
    request_id: strawberry.ID
    code: str


@strawberry.input
class ResendVerificationCodeInput:
    request_id: strawberry.ID


@strawberry.type(description="The request was received.")
class DataSubjectRequestReceived:
    request_id: strawberry.ID = strawberry.field(description="Keep it to follow the request.")
    status: PublicStatus
    verification_expires_at: datetime | None = strawberry.field(
        description="When the code sent to the requester expires (null: no code needed)."
    )
    replayed: bool


@strawberry.type(description="The requester's identity is confirmed.")
class DataSubjectRequestVerified:
    request_id: strawberry.ID
    status: PublicStatus


@strawberry.type(description="A new code is on its way; the previous one no longer works.")
class VerificationCodeSent:
    request_id: strawberry.ID
    expires_at: datetime


@strawberry.type(description="A request as its requester may follow it.")
class PublicRequestView:
    request_id: strawberry.ID
    type: RequestType
    status: PublicStatus
    received_at: datetime
    due_at: datetime


SubmitResult = Annotated[
    DataSubjectRequestReceived | ValidationError | RateLimitedError | ConflictError,
    strawberry.union("SubmitDataSubjectRequestResult"),
]
VerifyResult = Annotated[
    DataSubjectRequestVerified
    | ValidationError
    | NotFoundError
    | InvalidStateError
    | RateLimitedError,
    strawberry.union("VerifyDataSubjectRequestResult"),
]
ResendResult = Annotated[
    VerificationCodeSent | ValidationError | NotFoundError | InvalidStateError | RateLimitedError,
    strawberry.union("ResendVerificationCodeResult"),
]


def details_of(
    corrections: ProfileChangesInput | None, purposes: list[str] | None, note: str | None
) -> intake.Details:
    """The service's view of what a request asks for."""
    return intake.Details(profile_changes(corrections), list(purposes or []), note)


@strawberry.type
class PublicDsrQuery:
    @strawberry.field(
        description="Follow a request by the id given at submission (null when unknown).",
        extensions=public(),
    )
    async def data_subject_request_status(
        self, request_id: strawberry.ID
    ) -> PublicRequestView | None:
        found = await service.public_view(parse_id(request_id, "requestId"))
        if found is None:
            return None
        return PublicRequestView(
            request_id=strawberry.ID(str(found.request_id)),
            type=found.type,
            status=found.status,
            received_at=found.received_at,
            due_at=found.due_at,
        )


@strawberry.type
class PublicDsrMutation:
    @strawberry.mutation(
        description="Exercise a data protection right (no login). A code is sent to the email "
        "or phone given; confirm it with verifyDataSubjectRequest.",
        extensions=public(),
    )
    @errors_as_data
    async def submit_data_subject_request(
        self,
        info: Info[Any, Any],
        input: SubmitDataSubjectRequestInput,
        idempotency_key: str | None = None,
    ) -> SubmitResult:
        context = info.context
        submission = intake.RequestSubmission(
            input.type,
            intake.Subject(input.identifier.kind, input.identifier.value),
            details_of(input.corrections, input.purposes, input.note),
            input.jurisdiction,
            context.client_address,
        )
        done = await intake.submit(
            context.vault,
            context.auth,
            context.settings,
            context.notifier,
            submission,
            idempotency_key,
        )
        return DataSubjectRequestReceived(
            request_id=strawberry.ID(str(done.request_id)),
            status=done.public_status,
            verification_expires_at=done.verification_expires_at,
            replayed=done.replayed,
        )

    @strawberry.mutation(
        description="Confirm a request with the code sent to the requester.", extensions=public()
    )
    @errors_as_data
    async def verify_data_subject_request(
        self, info: Info[Any, Any], input: VerifyDataSubjectRequestInput
    ) -> VerifyResult:
        context = info.context
        request = await intake.verify(
            context.vault,
            context.auth,
            parse_id(input.request_id, "input.requestId"),
            input.code,
            context.client_address,
        )
        return DataSubjectRequestVerified(
            request_id=strawberry.ID(str(request.id)),
            status=await service.public_status_now(request),
        )

    @strawberry.mutation(
        description="Send a new verification code (the previous one stops working).",
        extensions=public(),
    )
    @errors_as_data
    async def resend_verification_code(
        self, info: Info[Any, Any], input: ResendVerificationCodeInput
    ) -> ResendResult:
        context = info.context
        request_id = parse_id(input.request_id, "input.requestId")
        expires_at = await intake.resend_code(
            context.vault, context.auth, context.notifier, request_id, context.client_address
        )
        return VerificationCodeSent(
            request_id=strawberry.ID(str(request_id)), expires_at=expires_at
        )
