"""Deny by default: every root field declares who may call it.

``@strawberry.field(extensions=allow(Role.ADMIN, ...))`` admits those roles;
``extensions=public()`` marks one of the few operations anyone may call. A test walks the schema
and fails on any root field with neither. The roles also appear in the field's description so
GraphiQL users can see them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from strawberry.extensions.field_extension import FieldExtension
from strawberry.permission import BasePermission, PermissionExtension
from strawberry.types.field import StrawberryField
from strawberry.types.info import Info

from cdlm.core.errors import AuthenticationRequired, PermissionDenied
from cdlm.core.principal import Principal
from cdlm.core.roles import ALL_ROLES, Role


async def current_principal(info: Info[Any, Any]) -> Principal | None:
    """The authenticated caller of this request, or None when no credentials were sent."""
    principal: Principal | None = await info.context.principal()
    return principal


async def require_principal(info: Info[Any, Any]) -> Principal:
    """The authenticated caller; raises a top-level authentication error when there is none."""
    principal = await current_principal(info)
    if principal is None:
        raise AuthenticationRequired("Authentication required.")
    return principal


def add_description_note(field: StrawberryField, note: str) -> None:
    """Append ``note`` to the field's description once (schemas may be built many times)."""
    description = field.description or ""
    if note not in description:
        field.description = f"{description} {note}".strip()


class HasRole(BasePermission):
    """The caller is authenticated and holds one of the roles; for an operation on data
    subjects' personal data, the caller may also access personal data now (the context's
    ``admit_personal_data``: privacy training its role requires is current)."""

    def __init__(self, roles: Iterable[Role], personal: bool = False) -> None:
        self.roles = frozenset(roles)
        self.personal = personal

    def has_permission(self, source: Any, info: Info[Any, Any], **kwargs: Any) -> bool:
        # The caller was resolved when the request's context was built: a plain lookup.
        principal = info.context.caller()
        if principal is None:
            raise AuthenticationRequired("Authentication required.")
        if principal.role not in self.roles:
            raise PermissionDenied("Your role does not allow this operation.")
        if self.personal:
            info.context.admit_personal_data()
        return True


def _describe_roles(roles: frozenset[Role]) -> str:
    if roles == ALL_ROLES:
        return "any authenticated caller"
    return ", ".join(sorted(role.value for role in roles))


#: Said of operations on personal data (``allow(..., personal=True)``).
PERSONAL_NOTE = (
    "Works on personal data: refused to staff whose role requires privacy training "
    "(CDLM_REQUIRE_TRAINING) while theirs is not current."
)


class RoleAccess(PermissionExtension):
    """Permission extension admitting ``roles`` (and saying so in the field description)."""

    def __init__(self, roles: Iterable[Role], personal: bool = False) -> None:
        self.roles = frozenset(roles)
        self.personal = personal
        super().__init__(permissions=[HasRole(self.roles, personal)], use_directives=False)

    def apply(self, field: StrawberryField) -> None:
        super().apply(field)
        add_description_note(field, f"Allowed: {_describe_roles(self.roles)}.")
        if self.personal:
            add_description_note(field, PERSONAL_NOTE)


class PublicAccess(FieldExtension):
    """Marks a field anyone may call (kept to a short, tested allow-list)."""

    def apply(self, field: StrawberryField) -> None:
        add_description_note(field, "Public: no authentication needed.")

    def resolve(
        self, next_: Callable[..., Any], source: Any, info: Info[Any, Any], **kwargs: Any
    ) -> Any:
        return next_(source, info, **kwargs)

    async def resolve_async(
        self,
        next_: Callable[..., Awaitable[Any]],
        source: Any,
        info: Info[Any, Any],
        **kwargs: Any,
    ) -> Any:
        return await next_(source, info, **kwargs)


def allow(*roles: Role, personal: bool = False) -> list[FieldExtension]:
    """Field extensions admitting callers with one of ``roles``; ``personal``: the operation
    works on data subjects' personal data, so staff held back from it are refused."""
    if not roles:
        raise ValueError("allow() needs at least one role; use public() for open fields")
    return [RoleAccess(roles, personal)]


def authenticated() -> list[FieldExtension]:
    """Field extensions admitting any authenticated caller."""
    return [RoleAccess(ALL_ROLES)]


def public() -> list[FieldExtension]:
    """Field extensions for a public field."""
    return [PublicAccess()]
