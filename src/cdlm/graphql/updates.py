"""The one partial-update rule of the API: a field left out of an update input keeps its value,
``null`` clears it, and a field that cannot be cleared refuses ``null`` on its path.

Update inputs default their fields to ``strawberry.UNSET``. :class:`Changes` reads them for a
service, where ``None`` means "keep": every refused ``null`` is collected, so the client hears
of all of them at once.
"""

from __future__ import annotations

from typing import Any, TypeVar

import strawberry

from cdlm.core.errors import ErrorCode, FieldIssue, ValidationFailed

T = TypeVar("T")

CANNOT_CLEAR = "This field cannot be empty: leave it out to keep its value."


class Changes:
    """Reads the fields of one update input."""

    def __init__(self) -> None:
        self.issues: list[FieldIssue] = []

    def kept(self, value: Any, path: str) -> Any:
        """A field that cannot be cleared: its new value, or None (keep) when left out; a
        ``null`` is refused on ``path``."""
        if value is None:
            self.issues.append(FieldIssue(path, ErrorCode.REQUIRED, CANNOT_CLEAR))
        return None if value is strawberry.UNSET else value

    def clearable(self, value: Any, empty: T) -> Any:
        """A field that ``null`` clears: its new value, ``empty`` when cleared, or None (keep)
        when left out."""
        if value is strawberry.UNSET:
            return None
        return empty if value is None else value

    def check(self) -> None:
        """Raise every refused ``null`` at once."""
        if self.issues:
            raise ValidationFailed.from_issues(self.issues)
