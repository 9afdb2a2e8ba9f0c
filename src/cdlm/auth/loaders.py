"""DataLoader batch functions of authentication (bound per request in the context)."""

from __future__ import annotations

import uuid

from cdlm.auth import service, training
from cdlm.auth.models import ApiKey, StaffTraining, StaffUser
from cdlm.core.principal import Principal


async def staff_users_by_id(actor: Principal, ids: list[uuid.UUID]) -> list[StaffUser | None]:
    """Staff users by id, in order; ``actor``'s read of them is audited (names and work
    emails are personal data)."""
    return await service.staff_users_by_ids(actor, ids)


async def api_keys_by_id(ids: list[uuid.UUID]) -> list[ApiKey | None]:
    """API keys by id, in order."""
    return await service.api_keys_by_ids(ids)


async def trainings_by_user(ids: list[uuid.UUID]) -> list[list[StaffTraining]]:
    """Each staff user's privacy trainings, latest completed first."""
    return await training.trainings_by_users(ids)
