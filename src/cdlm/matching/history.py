"""The merge history of profiles (what ``Customer.mergeHistory`` and access exports show)."""

from __future__ import annotations

import uuid
from typing import Any

from tortoise.expressions import Q

from cdlm.matching.models import Merge


async def of_customers(customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Merge]]:
    """Every merge each customer took part in, as survivor or merged, oldest first (one
    query)."""
    found: dict[uuid.UUID, list[Merge]] = {c: [] for c in customer_ids}
    if customer_ids:
        rows = await Merge.filter(
            Q(survivor_id__in=customer_ids) | Q(merged_id__in=customer_ids)
        ).order_by("merged_at", "id")
        for row in rows:
            for side in (row.survivor_id, row.merged_id):
                if side in found:
                    found[side].append(row)
    return found


def merge_json(merge: Merge) -> dict[str, Any]:
    """A merge as JSON-ready data: ids, kind and times (no staff text)."""
    return {
        "id": str(merge.id),
        "kind": merge.kind.value,
        "survivor_id": str(merge.survivor_id),
        "merged_id": str(merge.merged_id),
        "merged_at": merge.merged_at.isoformat(),
        "unmerged_at": merge.unmerged_at.isoformat() if merge.unmerged_at else None,
    }
