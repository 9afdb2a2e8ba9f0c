"""DataLoader batch functions of governance (one query per relation per request)."""

from __future__ import annotations

from cdlm.auth import training
from cdlm.auth.training import RoleCoverage
from cdlm.core import clock
from cdlm.core.roles import Role
from cdlm.governance import stewardship
from cdlm.governance.stewardship import Ownership


async def ownership_by_category(categories: list[str]) -> list[Ownership]:
    """The current owner-and-steward assignment of each category."""
    return await stewardship.ownership_by_categories(categories)


async def coverage_by_role(required: frozenset[Role], roles: list[Role]) -> list[RoleCoverage]:
    """Privacy-training coverage of each role (``required``: the roles that need it)."""
    found = {c.role: c for c in await training.coverage(required, clock.now())}
    return [found[role] for role in roles]
