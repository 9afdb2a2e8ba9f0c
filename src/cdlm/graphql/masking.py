"""The ``personal(kind)`` field extension: masks a resolved value for roles not cleared for it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.types.field import StrawberryField
from strawberry.types.info import Info

from cdlm.core.personal_data import CLEAR_ROLES, PersonalData, present, sees_in_clear
from cdlm.graphql.permissions import add_description_note


class PersonalField(FieldExtension):
    """Marks a field as personal data of ``kind`` and masks it by the caller's role."""

    def __init__(self, kind: PersonalData) -> None:
        self.kind = kind

    def apply(self, field: StrawberryField) -> None:
        cleared = ", ".join(sorted(role.value for role in CLEAR_ROLES[self.kind]))
        add_description_note(
            field, f"Personal data ({self.kind.value}): in clear for {cleared}; masked for others."
        )

    def _mask(self, value: Any, info: Info[Any, Any]) -> Any:
        # The root field's permission check has authenticated the caller already; a personal
        # field reached without that (which the schema test forbids) is masked.
        principal = info.context.authenticated_principal
        role = principal.role if principal is not None else None
        if value is None or sees_in_clear(role, self.kind):
            return value
        if isinstance(value, list):
            return [present(item, self.kind, role) for item in value]
        if isinstance(value, str):
            return present(value, self.kind, role)
        return None  # structured personal data (JSON) has no partial view

    def resolve(
        self, next_: Callable[..., Any], source: Any, info: Info[Any, Any], **kwargs: Any
    ) -> Any:
        return self._mask(next_(source, info, **kwargs), info)

    async def resolve_async(
        self,
        next_: Callable[..., Awaitable[Any]],
        source: Any,
        info: Info[Any, Any],
        **kwargs: Any,
    ) -> Any:
        return self._mask(await next_(source, info, **kwargs), info)


def personal(kind: PersonalData) -> list[FieldExtension]:
    """Field extensions for a field holding personal data of ``kind``."""
    return [PersonalField(kind)]
