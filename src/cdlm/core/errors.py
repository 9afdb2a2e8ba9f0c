"""Domain errors: the expected failures that services raise and the API returns as data.

Services raise a :class:`DomainError` subclass; ``cdlm.graphql.errors`` maps it to a GraphQL type
implementing ``UserError``. Messages are written for the API's users and must never contain
personal data (name the field, not its value).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    """Machine-readable reason of an expected failure."""

    VALIDATION = "VALIDATION"
    REQUIRED = "REQUIRED"
    INVALID_FORMAT = "INVALID_FORMAT"
    IMPLAUSIBLE = "IMPLAUSIBLE"
    TOO_LONG = "TOO_LONG"
    UNKNOWN_CODE = "UNKNOWN_CODE"
    BLOCKED_IDENTIFIER = "BLOCKED_IDENTIFIER"
    IDENTITY_CONFLICT = "IDENTITY_CONFLICT"
    IDENTITY_LIMIT = "IDENTITY_LIMIT"
    TOO_MANY_ITEMS = "TOO_MANY_ITEMS"
    IDEMPOTENCY_MISMATCH = "IDEMPOTENCY_MISMATCH"
    STALE_NOTICE_VERSION = "STALE_NOTICE_VERSION"
    INVALID_CURSOR = "INVALID_CURSOR"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    INVALID_STATE = "INVALID_STATE"
    POLICY_VIOLATION = "POLICY_VIOLATION"
    RATE_LIMITED = "RATE_LIMITED"
    WRONG_CODE = "WRONG_CODE"
    CODE_EXPIRED = "CODE_EXPIRED"
    SUPPRESSED = "SUPPRESSED"
    PROCESSING_RESTRICTED = "PROCESSING_RESTRICTED"
    OBJECTION_IN_FORCE = "OBJECTION_IN_FORCE"
    SAME_CUSTOMER = "SAME_CUSTOMER"
    CUSTOMER_ERASED = "CUSTOMER_ERASED"
    ALREADY_MERGED = "ALREADY_MERGED"
    MARKED_NOT_A_MATCH = "MARKED_NOT_A_MATCH"
    ALREADY_UNMERGED = "ALREADY_UNMERGED"
    RUN_IN_PROGRESS = "RUN_IN_PROGRESS"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    INVALID_ID = "INVALID_ID"


class OperationErrorCode(StrEnum):
    """``extensions.code`` of a top-level error that is not about the caller's input: the
    caller is unknown or not allowed, or the server failed. Never a user error's code."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    INTERNAL = "INTERNAL"


@dataclass(frozen=True)
class FieldIssue:
    """One problem with one input field; ``field`` is a dotted path such as ``input.email``."""

    field: str
    code: ErrorCode
    message: str


class DomainError(Exception):
    """An expected failure of a business rule."""

    code: ErrorCode = ErrorCode.VALIDATION

    def __init__(
        self,
        message: str,
        *,
        field: str | None = None,
        code: ErrorCode | None = None,
        issues: list[FieldIssue] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code
        self.issues = issues or []


class ValidationFailed(DomainError):
    """Input is malformed or breaks a validation rule."""

    code = ErrorCode.VALIDATION

    @classmethod
    def from_issues(cls, issues: list[FieldIssue]) -> ValidationFailed:
        """One error that carries every field issue; the first names the ``field``."""
        if not issues:
            raise ValueError("from_issues needs at least one issue")
        first = issues[0]
        summary = first.message if len(issues) == 1 else f"{len(issues)} fields are invalid"
        return cls(summary, field=first.field, code=first.code, issues=list(issues))


class NotFound(DomainError):
    """The thing addressed does not exist (or the caller may not know it exists)."""

    code = ErrorCode.NOT_FOUND


class Conflict(DomainError):
    """The change conflicts with the current state (duplicate, concurrent change)."""

    code = ErrorCode.CONFLICT


class InvalidStateTransition(DomainError):
    """The thing is not in a state that allows this change."""

    code = ErrorCode.INVALID_STATE


class PolicyViolation(DomainError):
    """A privacy or governance rule forbids this (consent, legal hold, restriction)."""

    code = ErrorCode.POLICY_VIOLATION


class RateLimited(DomainError):
    """Too many attempts; try again later."""

    code = ErrorCode.RATE_LIMITED


class InvalidCredentials(DomainError):
    """The credentials are wrong, unknown, expired, revoked or malformed (never says which)."""

    code = ErrorCode.INVALID_CREDENTIALS


class AccessError(Exception):
    """The caller may not do this; reported as a top-level error, not as data."""

    code: OperationErrorCode = OperationErrorCode.FORBIDDEN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class AuthenticationRequired(AccessError):
    """No valid credentials were presented."""

    code = OperationErrorCode.UNAUTHENTICATED


class PermissionDenied(AccessError):
    """The caller is authenticated but may not do this."""

    code = OperationErrorCode.FORBIDDEN
