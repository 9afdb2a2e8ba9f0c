"""DataLoader batch functions of retention (a constant number of queries per request)."""

from __future__ import annotations

import uuid

from cdlm.retention import policies, sweep
from cdlm.retention.models import RetentionPolicy


async def policies_by_id(ids: list[uuid.UUID]) -> list[RetentionPolicy | None]:
    """Retention policies by id (None for one since removed)."""
    found = await policies.policies_by_ids(ids)
    return [found.get(policy_id) for policy_id in ids]


async def outcomes_by_run(ids: list[uuid.UUID]) -> list[list[sweep.Outcome]]:
    """Each sweep run's evidence per policy, by category."""
    found = await sweep.outcomes_of(ids)
    return [found[run_id] for run_id in ids]
