"""Errors of authentication and account management."""

from __future__ import annotations

from cdlm.core.errors import DomainError, ErrorCode


class InvalidCredentials(DomainError):
    """The credentials are wrong, unknown, expired, revoked or malformed (never says which)."""

    code = ErrorCode.INVALID_CREDENTIALS
