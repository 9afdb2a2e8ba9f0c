"""The ``personal(kind)`` field extension: masks a resolved value for roles not cleared for it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import strawberry
from strawberry.extensions.field_extension import FieldExtension
from strawberry.types.field import StrawberryField
from strawberry.types.info import Info

from cdlm.core.personal_data import CLEAR_ROLES, PersonalData, present, sees_in_clear
from cdlm.core.roles import Role
from cdlm.graphql.permissions import add_description_note


def mask(value: Any, kind: PersonalData, role: Role | None) -> Any:
    """``value`` as ``role`` may see it: strings (and lists of them) in clear or masked by
    ``kind``; structured personal data (JSON) has no partial view, so it is withheld."""
    if value is None or sees_in_clear(role, kind):
        return value
    if isinstance(value, list):
        return [present(item, kind, role) for item in value]
    if isinstance(value, str):
        return present(value, kind, role)
    return None


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
        return mask(value, self.kind, principal.role if principal is not None else None)

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


#: Metadata key marking a field whose value its type's constructor has already masked.
PERSONAL_METADATA = "personal_data"


def masked_field(kind: PersonalData, description: str | None = None) -> Any:
    """A plain field holding personal data of ``kind`` that the type masks when it is built
    (:func:`present` with the caller's role), so it resolves without a per-field wrapper. It
    is described and tagged like :func:`personal` fields (schema tests find both)."""
    cleared = ", ".join(sorted(role.value for role in CLEAR_ROLES[kind]))
    note = f"Personal data ({kind.value}): in clear for {cleared}; masked for others."
    return strawberry.field(
        description=f"{description} {note}" if description else note,
        metadata={PERSONAL_METADATA: kind},
    )


def personal_kind(field: StrawberryField) -> PersonalData | None:
    """The kind of personal data ``field`` holds, if it is personal (either way of marking)."""
    for extension in field.extensions:
        if isinstance(extension, PersonalField):
            return extension.kind
    metadata: dict[str, Any] = dict(field.metadata or {})
    kind = metadata.get(PERSONAL_METADATA)
    return kind if isinstance(kind, PersonalData) else None
