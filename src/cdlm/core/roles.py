"""The roles of cdlm and the groups of roles that rules refer to."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    """What a caller may do; every staff user and API key has exactly one."""

    ADMIN = "admin"
    PRIVACY_OFFICER = "privacy_officer"
    STEWARD = "steward"
    ANALYST = "analyst"
    AGENT = "agent"
    INGEST = "ingest"


ALL_ROLES: frozenset[Role] = frozenset(Role)
#: People (and their frontends) working with customer data; excludes machine ingestion keys.
STAFF_ROLES: frozenset[Role] = ALL_ROLES - {Role.INGEST}
#: Oversight of the whole system: audit trail, policies.
OVERSIGHT_ROLES: frozenset[Role] = frozenset({Role.ADMIN, Role.PRIVACY_OFFICER})
