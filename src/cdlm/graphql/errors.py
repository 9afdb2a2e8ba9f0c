"""The error convention of the API.

Expected failures of a mutation are data: the mutation's result union holds a type implementing
``UserError``. :func:`user_error` is the one mapper from a service's :class:`DomainError` to
those types. Authentication and authorization failures are top-level errors
(:class:`cdlm.core.errors.AccessError`); anything else reaching the client is masked with the
request id (see :mod:`cdlm.graphql.extensions`).
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

import strawberry

from cdlm.core import errors as domain
from cdlm.core.errors import ErrorCode, InvalidCredentials

P = ParamSpec("P")
R = TypeVar("R")

strawberry.enum(ErrorCode, description="Machine-readable reason of an expected failure.")


@strawberry.type(description="One problem with one input field.")
class FieldIssue:
    field: str = strawberry.field(description="Dotted path of the input field, e.g. input.email")
    code: ErrorCode
    message: str


@strawberry.interface(description="An expected failure, returned as data in a result union.")
class UserError:
    message: str
    code: ErrorCode
    field: str | None = strawberry.field(description="Dotted path of the input field at fault.")


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
