"""Factories for test data, built through the real services."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cdlm.auth import service as auth_service
from cdlm.auth.models import StaffUser
from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LawfulBasis, LifecycleStage, SourceKind
from cdlm.customers.ingest import CustomerIngest, IngestResult, Source, ingest_one
from cdlm.graphql.relay import global_id
from cdlm.matching.models import CandidateStatus, MatchCandidate
from cdlm.quality.fields import PROFILE
from cdlm.vault.service import Vault

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


def source(
    system: str = "crm",
    kind: SourceKind = SourceKind.CRM,
    *,
    collected_at: datetime | None = None,
    basis: LawfulBasis = LawfulBasis.CONTRACT,
    purpose: str = "essential.service",
) -> Source:
    return Source(system, kind, collected_at or clock.now(), basis, purpose)


async def make_customer(
    vault: Vault,
    *,
    external_ids: Sequence[str] = (),
    origin: Source | None = None,
    stage: LifecycleStage | None = None,
    **profile: str | None,
) -> IngestResult:
    """A customer ingested through the real acquisition path."""
    record = CustomerIngest(
        source=origin or source(),
        profile=dict(profile),
        external_ids=list(external_ids),
        lifecycle_stage=stage,
    )
    return (await ingest_one(SYSTEM, vault, record)).result


def profile_input(**values: Any) -> dict[str, Any]:
    """A GraphQL ProfileInput from snake_case keyword values (``line1``, ``postal_code``...
    for the address; the paths come from the profile's field table)."""
    by_attribute = {field.attributes[-1]: field for field in PROFILE}
    profile: dict[str, Any] = {}
    for key, value in values.items():
        *parents, leaf = by_attribute[key].api_path.split(".")
        target = profile
        for parent in parents:
            target = target.setdefault(parent, {})
        target[leaf] = value
    return profile


async def make_candidate(
    one: uuid.UUID,
    other: uuid.UUID,
    *,
    status: CandidateStatus = CandidateStatus.PENDING,
    probability: float = 0.9,
    comparisons: Sequence[dict[str, Any]] = (),
    merge_id: uuid.UUID | None = None,
) -> MatchCandidate:
    """A match candidate as a run stores it (the pair in id order)."""
    left, right = sorted([one, other])
    now = clock.now()
    return await MatchCandidate.create(
        id=uuid.uuid4(),
        left_id=left,
        right_id=right,
        status=status,
        probability=probability,
        match_weight=7.5,
        comparisons=list(comparisons),
        conflicts=[],
        model_version=1,
        found_at=now,
        updated_at=now,
        left_digest="l",
        right_digest="r",
        merge_id=merge_id,
    )


def gid(type_name: str, key: uuid.UUID | str) -> str:
    """The API's global id of the ``type_name`` object whose database id is ``key``."""
    return str(global_id(type_name, key))
