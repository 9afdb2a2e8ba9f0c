"""The public side of data subject requests: submitting, verifying, following the status.

These need no login (they are on the public allow-list) and are rate-limited per client
address and per identifier; none of them says whether cdlm holds data about anyone. The
request id they hand out and take back is the request's global id.
"""

import uuid
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.customers.api.mutations import ProfileChangesInput, profile_changes
from cdlm.dsr import intake, service
from cdlm.dsr.api.types import TYPE_NAME, Jurisdiction, PublicStatus, RequestType, request_id
from cdlm.graphql.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    Outcomes,
    RateLimitedError,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.permissions import public
from cdlm.graphql.relay import parse_id
from cdlm.graphql.vocabulary import IdentifierKind

#: Said of every mutation that takes an idempotency key.
IDEMPOTENCY_KEY = (
    "Any string of 1 to 200 characters, unique per request you mean to make: sending the same "
    "key again (a retry) returns the first result and changes nothing."
)


@strawberry.input(description="How a requester identifies themselves.")
class RequesterIdentifierInput:
    kind: IdentifierKind = strawberry.field(
        description="The kind of identifier (EMAIL or PHONE for a self-service request: the "
        "verification code is sent there)."
    )
    value: str = strawberry.field(
        description="The identifier as the requester typed it (an email address, a phone "
        "number in international format, or an external id)."
    )


@strawberry.input(description="A data protection right exercised by the data subject.")
class SubmitDataSubjectRequestInput:
    type: RequestType = strawberry.field(description="The right exercised.")
    identifier: RequesterIdentifierInput = strawberry.field(
        description="An email or phone number: the verification code is sent there."
    )
    jurisdiction: Jurisdiction | None = strawberry.field(
        default=None,
        description="The law to handle it under (omitted or null: the installation's, "
        "CDLM_DSR_DEFAULT_JURISDICTION).",
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
        default=None, description="Anything the requester wants to add (at most 2000 characters)."
    )


@strawberry.input(description="The code sent to the requester, to confirm a request.")
class VerifyDataSubjectRequestInput:
    request_id: strawberry.ID = strawberry.field(
        description="The request's id, as submitDataSubjectRequest returned it."
    )
    code: str = strawberry.field(description="The 6-digit code sent to the requester.")


@strawberry.input(description="The request that needs a new verification code.")
class ResendVerificationCodeInput:
    request_id: strawberry.ID = strawberry.field(
        description="The request's id, as submitDataSubjectRequest returned it."
    )


@strawberry.type(description="A request as its requester may follow it.")
class DataSubjectRequestPublicView:
    request_id: strawberry.ID = strawberry.field(
        description="The request's id (the one given at submission)."
    )
    type: RequestType = strawberry.field(description="The right exercised.")
    status: PublicStatus = strawberry.field(
        description="Where it stands (a duplicate shows its original's)."
    )
    received_at: datetime = strawberry.field(description="When it was received.")
    due_at: datetime = strawberry.field(
        description="When the answer is due (a duplicate shows its original's)."
    )

    @classmethod
    def of(cls, found: service.PublicView) -> "DataSubjectRequestPublicView":
        return cls(
            request_id=request_id(found.request_id),
            type=found.type,
            status=found.status,
            received_at=found.received_at,
            due_at=found.due_at,
        )


async def _view(key: uuid.UUID) -> DataSubjectRequestPublicView:
    found = await service.public_view(key)
    assert found is not None, "the request was just read"
    return DataSubjectRequestPublicView.of(found)


@strawberry.type(description="The request was received.")
class DataSubjectRequestReceived:
    request_id: strawberry.ID = strawberry.field(
        description="The request's id: keep it to verify and to follow the request."
    )
    status: PublicStatus = strawberry.field(description="Where it stands now.")
    verification_expires_at: datetime | None = strawberry.field(
        description="When the code sent to the requester expires (null: no code needed)."
    )
    replayed: bool = strawberry.field(
        description="true: the idempotency key was used before; this is the first result and "
        "nothing new was made."
    )
    request: DataSubjectRequestPublicView = strawberry.field(
        description="The request as its requester may follow it."
    )


@strawberry.type(description="The requester's identity is confirmed.")
class DataSubjectRequestVerified:
    request_id: strawberry.ID = strawberry.field(description="The request's id.")
    status: PublicStatus = strawberry.field(
        description="Where it stands now (a duplicate of an open request shows the original's)."
    )
    request: DataSubjectRequestPublicView = strawberry.field(
        description="The request as its requester may follow it."
    )


@strawberry.type(description="A new code is on its way; the previous one no longer works.")
class VerificationCodeSent:
    request_id: strawberry.ID = strawberry.field(description="The request's id.")
    expires_at: datetime = strawberry.field(description="When the new code expires.")
    request: DataSubjectRequestPublicView = strawberry.field(
        description="The request as its requester may follow it."
    )


SUBMIT = Outcomes(
    "SubmitDataSubjectRequestResult",
    DataSubjectRequestReceived,
    {
        ValidationError: "the identifier is not an email or phone number or is malformed, the "
        "corrections, purposes or note do not fit the type of request, or the idempotency key "
        "is empty or too long (every problem is listed in `issues`)",
        RateLimitedError: "too many requests came from this address or name this identifier",
        ConflictError: "the idempotency key was used before with other input "
        "(IDEMPOTENCY_MISMATCH)",
    },
)
VERIFY = Outcomes(
    "VerifyDataSubjectRequestResult",
    DataSubjectRequestVerified,
    {
        ValidationError: "the request id is malformed (INVALID_ID), the code is wrong "
        "(WRONG_CODE: the message says how many attempts are left) or has expired "
        "(CODE_EXPIRED: ask for a new one)",
        NotFoundError: "no request has this id",
        InvalidStateError: "the request is not waiting for verification",
        RateLimitedError: "too many attempts from this address, or too many wrong codes",
    },
)
RESEND = Outcomes(
    "ResendVerificationCodeResult",
    VerificationCodeSent,
    {
        ValidationError: "the request id is malformed (INVALID_ID)",
        NotFoundError: "no request has this id",
        InvalidStateError: "the request is not waiting for verification",
        RateLimitedError: "too many codes were asked for, or too many wrong codes were tried "
        "(then submit a new request)",
    },
)


SubmitDataSubjectRequestResult = Annotated[
    DataSubjectRequestReceived | ValidationError | RateLimitedError | ConflictError, SUBMIT.marker
]
VerifyDataSubjectRequestResult = Annotated[
    DataSubjectRequestVerified
    | ValidationError
    | NotFoundError
    | InvalidStateError
    | RateLimitedError,
    VERIFY.marker,
]
ResendVerificationCodeResult = Annotated[
    VerificationCodeSent | ValidationError | NotFoundError | InvalidStateError | RateLimitedError,
    RESEND.marker,
]


def details_of(
    corrections: ProfileChangesInput | None, purposes: list[str] | None, note: str | None
) -> intake.Details:
    """The service's view of what a request asks for."""
    return intake.Details(profile_changes(corrections), list(purposes or []), note)


@strawberry.type
class PublicDsrQuery:
    @strawberry.field(
        description="Follow a request by the id given at submission (null when no request "
        "has this id).",
        extensions=public(),
    )
    async def data_subject_request_status(
        self,
        request_id: Annotated[
            strawberry.ID,
            strawberry.argument(
                description="The request's id, as submitDataSubjectRequest returned it."
            ),
        ],
    ) -> DataSubjectRequestPublicView | None:
        found = await service.public_view(parse_id(request_id, "requestId", TYPE_NAME))
        return DataSubjectRequestPublicView.of(found) if found is not None else None


@strawberry.type
class PublicDsrMutation:
    @strawberry.mutation(
        description=SUBMIT.describe(
            "Exercise a data protection right (no login). A code is sent to the email or "
            "phone given; confirm it with verifyDataSubjectRequest (an opt-out of sale needs "
            "no code). The answer never says whether cdlm holds data about anyone."
        ),
        extensions=public(),
    )
    @errors_as_data
    async def submit_data_subject_request(
        self,
        info: Info[Any, Any],
        input: Annotated[
            SubmitDataSubjectRequestInput, strawberry.argument(description="The request.")
        ],
        idempotency_key: Annotated[
            str | None, strawberry.argument(description=IDEMPOTENCY_KEY)
        ] = None,
    ) -> SubmitDataSubjectRequestResult:
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
            request_id=request_id(done.request_id),
            status=done.public_status,
            verification_expires_at=done.verification_expires_at,
            replayed=done.replayed,
            request=await _view(done.request_id),
        )

    @strawberry.mutation(
        description=VERIFY.describe("Confirm a request with the code sent to the requester."),
        extensions=public(),
    )
    @errors_as_data
    async def verify_data_subject_request(
        self,
        info: Info[Any, Any],
        input: Annotated[
            VerifyDataSubjectRequestInput,
            strawberry.argument(description="The request and its code."),
        ],
    ) -> VerifyDataSubjectRequestResult:
        context = info.context
        request = await intake.verify(
            context.vault,
            context.auth,
            parse_id(input.request_id, "input.requestId", TYPE_NAME),
            input.code,
            context.client_address,
        )
        return DataSubjectRequestVerified(
            request_id=request_id(request.id),
            status=await service.public_status_now(request),
            request=await _view(request.id),
        )

    @strawberry.mutation(
        description=RESEND.describe(
            "Send a new verification code (the previous one stops working)."
        ),
        extensions=public(),
    )
    @errors_as_data
    async def resend_verification_code(
        self,
        info: Info[Any, Any],
        input: Annotated[
            ResendVerificationCodeInput,
            strawberry.argument(description="The request that needs a new code."),
        ],
    ) -> ResendVerificationCodeResult:
        context = info.context
        key = parse_id(input.request_id, "input.requestId", TYPE_NAME)
        expires_at = await intake.resend_code(
            context.vault, context.auth, context.notifier, key, context.client_address
        )
        return VerificationCodeSent(
            request_id=request_id(key), expires_at=expires_at, request=await _view(key)
        )
