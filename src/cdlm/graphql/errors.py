"""The error convention of the API.

Expected failures of a mutation are data: the mutation's result union holds a type implementing
``UserError``. :func:`user_error` is the one mapper from a service's :class:`DomainError` to
those types. Authentication and authorization failures are top-level errors
(:class:`cdlm.core.errors.AccessError`); anything else reaching the client is masked with the
request id (see :mod:`cdlm.graphql.extensions`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar

import strawberry

from cdlm.core import errors as domain
from cdlm.core.errors import ErrorCode, InvalidCredentials
from cdlm.graphql.enums import describe_enum

P = ParamSpec("P")
R = TypeVar("R")

describe_enum(
    ErrorCode,
    "Machine-readable reason of an expected failure (a user error's `code`).",
    {
        ErrorCode.VALIDATION: "The input breaks a validation rule.",
        ErrorCode.REQUIRED: "A required value is missing.",
        ErrorCode.INVALID_FORMAT: "The value is not in the expected format.",
        ErrorCode.IMPLAUSIBLE: "The value is well formed but cannot be true (a birth date in "
        "the future, an amount out of range).",
        ErrorCode.TOO_LONG: "The value is longer than allowed.",
        ErrorCode.UNKNOWN_CODE: "The code is not one cdlm knows (country, currency, purpose).",
        ErrorCode.BLOCKED_IDENTIFIER: "The identifier is a known placeholder or is shared by "
        "too many people to identify anyone (test@test.com, 0000000000).",
        ErrorCode.IDENTITY_CONFLICT: "The identifier already belongs to another customer.",
        ErrorCode.IDENTITY_LIMIT: "The customer has as many identifiers of this kind as allowed.",
        ErrorCode.TOO_MANY_ITEMS: "The list is longer than allowed.",
        ErrorCode.IDEMPOTENCY_MISMATCH: "The idempotency key was used before with other input.",
        ErrorCode.STALE_NOTICE_VERSION: "The notice shown is not the purpose's current version.",
        ErrorCode.INVALID_CURSOR: "The cursor is malformed or belongs to another list.",
        ErrorCode.INVALID_ID: "The id is malformed or is the id of another type of object.",
        ErrorCode.NOT_FOUND: "The object referred to does not exist.",
        ErrorCode.CONFLICT: "The change conflicts with existing data (a duplicate, a concurrent "
        "change).",
        ErrorCode.INVALID_STATE: "The object is not in a state that allows this change.",
        ErrorCode.POLICY_VIOLATION: "A privacy or governance rule forbids the change.",
        ErrorCode.RATE_LIMITED: "Too many attempts: wait before trying again.",
        ErrorCode.WRONG_CODE: "The verification code is wrong.",
        ErrorCode.CODE_EXPIRED: "The verification code has expired: ask for a new one.",
        ErrorCode.SUPPRESSED: "The identifier belongs to an erased person and may not be "
        "collected again.",
        ErrorCode.PROCESSING_RESTRICTED: "The customer's processing is restricted (GDPR Art. 18).",
        ErrorCode.OBJECTION_IN_FORCE: "The customer objected to this processing (GDPR Art. 21).",
        ErrorCode.SAME_CUSTOMER: "Both ids are the same customer.",
        ErrorCode.CUSTOMER_ERASED: "The customer was erased.",
        ErrorCode.ALREADY_MERGED: "The profile was already merged into another.",
        ErrorCode.MARKED_NOT_A_MATCH: "A steward decided these profiles are two people.",
        ErrorCode.ALREADY_UNMERGED: "The merge was already undone.",
        ErrorCode.RUN_IN_PROGRESS: "A run of the same kind is under way.",
        ErrorCode.INVALID_CREDENTIALS: "The credentials are wrong (never said which part).",
    },
    name="UserErrorCode",
)


@strawberry.type(description="One problem with one input field.")
class FieldIssue:
    field: str = strawberry.field(
        description="Path of the input field at fault as the API spells it, from the "
        "mutation's argument: `input.profile.email`, `input.events.3.amount` (list positions "
        "count from 0)."
    )
    code: ErrorCode = strawberry.field(description="Why the value was refused.")
    message: str = strawberry.field(description="What is wrong, for people; never the value.")


@strawberry.interface(description="An expected failure, returned as data in a result union.")
class UserError:
    message: str = strawberry.field(
        description="What went wrong, for people (it never contains personal data)."
    )
    code: ErrorCode = strawberry.field(description="What went wrong, for programs.")
    field: str | None = strawberry.field(
        description="Path of the input field at fault (see FieldIssue.field); null when the "
        "error is not about one field."
    )


@strawberry.type(description="Input is malformed or breaks a validation rule.")
class ValidationError(UserError):
    issues: list[FieldIssue] = strawberry.field(
        description="Every field problem found (all are reported at once)."
    )


@strawberry.type(description="The thing addressed does not exist.")
class NotFoundError(UserError):
    pass


@strawberry.type(description="The change conflicts with the current state.")
class ConflictError(UserError):
    pass


@strawberry.type(description="The thing is not in a state that allows this change.")
class InvalidStateError(UserError):
    pass


@strawberry.type(description="A privacy or governance rule forbids this change.")
class PolicyViolationError(UserError):
    pass


@strawberry.type(description="Too many attempts; try again later.")
class RateLimitedError(UserError):
    pass


@strawberry.type(description="The credentials are wrong (it is never said which part).")
class InvalidCredentialsError(UserError):
    pass


#: All concrete UserError types, for schema assembly (they appear in result unions).
USER_ERROR_TYPES: tuple[type, ...] = (
    ValidationError,
    NotFoundError,
    ConflictError,
    InvalidStateError,
    PolicyViolationError,
    RateLimitedError,
    InvalidCredentialsError,
)

_BY_DOMAIN_ERROR: dict[type[domain.DomainError], type[UserError]] = {
    domain.NotFound: NotFoundError,
    domain.Conflict: ConflictError,
    domain.InvalidStateTransition: InvalidStateError,
    domain.PolicyViolation: PolicyViolationError,
    domain.RateLimited: RateLimitedError,
    InvalidCredentials: InvalidCredentialsError,
}


@dataclass(frozen=True)
class Outcomes:
    """What a mutation returns: its success type or one of the errors it can return, each
    with when. One per mutation, written out as its ``<Mutation>Result``:
    ``Annotated[Done | ValidationError, OUTCOMES.marker]``."""

    name: str
    success: type
    errors: Mapping[type[UserError], str]

    def __post_init__(self) -> None:
        if not self.name.endswith("Result"):
            raise ValueError("a mutation's result union is named <Mutation>Result")
        if not self.errors:
            raise ValueError(f"{self.name} lists no error: return the success type itself")

    @property
    def marker(self) -> Any:
        """The union's name and description, for a union written out so type checkers see
        it: ``Annotated[Done | ValidationError, OUTCOMES.marker]`` (a test checks that the
        members written are the ones described)."""
        return strawberry.union(self.name, description=self._union_description())

    def _union_description(self) -> str:
        errors = "; ".join(f"{cls.__name__} when {when}" for cls, when in self.errors.items())
        return f"{self.success.__name__} on success; else {errors}."

    def describe(self, summary: str) -> str:
        """The mutation's description: ``summary`` and the errors it can return."""
        errors = "; ".join(f"`{cls.__name__}` when {when}" for cls, when in self.errors.items())
        return f"{summary} Errors: {errors}."


def errors_as_data(
    resolver: Callable[P, Awaitable[R]],
) -> Callable[P, Awaitable[R | UserError]]:
    """Decorate a mutation resolver so a :class:`DomainError` it raises becomes its result."""

    @functools.wraps(resolver)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R | UserError:
        try:
            return await resolver(*args, **kwargs)
        except domain.DomainError as error:
            return user_error(error)

    return wrapper


def user_error(error: domain.DomainError) -> UserError:
    """Map a service's :class:`DomainError` to its GraphQL ``UserError`` type."""
    for cls in type(error).__mro__:
        target = _BY_DOMAIN_ERROR.get(cls)
        if target is not None:
            return target(message=error.message, code=error.code, field=error.field)
    if not isinstance(error, domain.ValidationFailed):
        raise TypeError(f"no UserError type for {type(error).__name__}; add it to the mapping")
    issues = [FieldIssue(field=i.field, code=i.code, message=i.message) for i in error.issues]
    if not issues and error.field is not None:
        issues = [FieldIssue(field=error.field, code=error.code, message=error.message)]
    return ValidationError(message=error.message, code=error.code, field=error.field, issues=issues)
