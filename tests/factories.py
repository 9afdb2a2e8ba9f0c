"""Factories for test data, built through the real services."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from cdlm.auth import service as auth_service
from cdlm.auth.models import StaffUser
from cdlm.auth.principal import SYSTEM
from cdlm.auth.roles import Role
from cdlm.auth.settings import AuthSettings

DEFAULT_PASSWORD = "correct horse battery staple"
_numbers = itertools.count(1)


@dataclass(frozen=True)
class Staff:
    """A staff user with the password they sign in with."""

    user: StaffUser
    password: str

    @property
    def email(self) -> str:
        return self.user.email


async def make_staff(
    auth: AuthSettings,
    role: Role = Role.STEWARD,
    *,
    email: str | None = None,
    password: str = DEFAULT_PASSWORD,
    name: str | None = None,
) -> Staff:
    number = next(_numbers)
    user = await auth_service.create_staff_user(
        SYSTEM,
        email=email or f"staff{number}@example.com",
        display_name=name or f"Staff Member {number}",
        role=role,
        password=password,
        auth=auth,
    )
    return Staff(user=user, password=password)


async def make_api_key(auth: AuthSettings, role: Role = Role.ADMIN, name: str = "test key") -> str:
    created = await auth_service.create_api_key(
        SYSTEM, name=name, role=role, expires_at=None, auth=auth
    )
    return created.full_key


def bearer(credential: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {credential}"}
