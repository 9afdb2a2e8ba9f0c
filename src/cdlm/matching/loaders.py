"""DataLoader batch functions of matching (one query per relation per request)."""

from __future__ import annotations

import uuid

from cdlm.matching import history
from cdlm.matching.models import Merge


async def merges_by_customer(ids: list[uuid.UUID]) -> list[list[Merge]]:
    """Every merge each customer took part in, oldest first."""
    grouped = await history.of_customers(list(set(ids)))
    return [grouped[customer_id] for customer_id in ids]
