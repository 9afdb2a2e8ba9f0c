"""The caller of an operation: the ``actor`` every service function takes."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from cdlm.core.roles import Role


class PrincipalKind(StrEnum):
    """How the caller authenticated."""

    USER = "user"
    API_KEY = "api_key"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"


@dataclass(frozen=True)
class Principal:
    """An authenticated caller (or the system itself, for jobs and the CLI)."""

    kind: PrincipalKind
    id: uuid.UUID | None
    role: Role | None
    name: str
    session_id: uuid.UUID | None = None
    #: Why this caller may not access data subjects' personal data now (privacy training
    #: required for its role and not current), decided once when the caller is
    #: authenticated; None: nothing holds it back. API keys and the system are never held
    #: back.
    personal_data_refusal: str | None = None

    def has_role(self, *roles: Role) -> bool:
        """True when the caller holds one of ``roles``."""
        return self.role is not None and self.role in roles


#: The system acting on its own behalf (CLI bootstrap, scheduled jobs).
SYSTEM = Principal(kind=PrincipalKind.SYSTEM, id=None, role=Role.ADMIN, name="system")
#: A caller that presented no credentials (public operations only).
ANONYMOUS = Principal(kind=PrincipalKind.ANONYMOUS, id=None, role=None, name="anonymous")
