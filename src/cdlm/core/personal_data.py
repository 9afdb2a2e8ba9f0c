"""Which roles see which kinds of personal data in clear (the rest see masked values)."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum

from cdlm.core import masking
from cdlm.core.roles import Role


class PersonalData(StrEnum):
    """Kinds of personal data a field can hold; each kind has a masking rule."""

    EMAIL = "email"
    PHONE = "phone"
    NAME = "name"
    ADDRESS = "address"
    BIRTH_DATE = "birth_date"
    IDENTIFIER = "identifier"
    FREE_TEXT = "free_text"


_SUPPORT_ROLES = frozenset({Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.AGENT})

#: Roles that see each kind in clear. Analysts work on aggregates and masked profiles; ingestion
#: keys write but never read personal data.
CLEAR_ROLES: dict[PersonalData, frozenset[Role]] = {
    PersonalData.EMAIL: _SUPPORT_ROLES,
    PersonalData.PHONE: _SUPPORT_ROLES,
    PersonalData.NAME: _SUPPORT_ROLES,
    PersonalData.ADDRESS: _SUPPORT_ROLES,
    PersonalData.BIRTH_DATE: frozenset({Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD}),
    PersonalData.IDENTIFIER: _SUPPORT_ROLES,
    PersonalData.FREE_TEXT: _SUPPORT_ROLES,
}

MASKERS: dict[PersonalData, Callable[[str], str]] = {
    PersonalData.EMAIL: masking.mask_email,
    PersonalData.PHONE: masking.mask_phone,
    PersonalData.NAME: masking.mask_name,
    PersonalData.ADDRESS: masking.mask_text,
    PersonalData.BIRTH_DATE: lambda _: "****-**-**",
    PersonalData.IDENTIFIER: masking.mask_text,
    PersonalData.FREE_TEXT: masking.mask_text,
}


def sees_in_clear(role: Role | None, kind: PersonalData) -> bool:
    """True when ``role`` may read ``kind`` unmasked."""
    return role is not None and role in CLEAR_ROLES[kind]


def present(value: str | None, kind: PersonalData, role: Role | None) -> str | None:
    """``value`` as ``role`` may see it: in clear or masked."""
    if value is None or sees_in_clear(role, kind):
        return value
    return MASKERS[kind](value)
