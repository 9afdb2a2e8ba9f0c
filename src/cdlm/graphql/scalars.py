"""Conversions of GraphQL scalars into domain values."""

from __future__ import annotations

import uuid

from cdlm.core.errors import ValidationFailed


def parse_id(value: str, field: str) -> uuid.UUID:
    """The UUID behind an ``ID`` argument; a malformed one is a validation error on ``field``."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise ValidationFailed("This is not a valid id.", field=field) from None
