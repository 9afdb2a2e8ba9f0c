"""What matching keeps about a person, forgotten when they are erased."""

from __future__ import annotations

import uuid

from tortoise.expressions import Q

from cdlm.matching.models import MatchCandidate, Merge, MovedRow


async def forget(customer_ids: list[uuid.UUID]) -> int:
    """Delete the candidates and merges naming these customers (ids, scores and keyed
    digests: nothing readable, but nothing of an erased person is kept); returns the number
    of rows deleted."""
    if not customer_ids:
        return 0
    deleted = await MatchCandidate.filter(
        Q(left_id__in=customer_ids) | Q(right_id__in=customer_ids)
    ).delete()
    merges = await Merge.filter(
        Q(survivor_id__in=customer_ids) | Q(merged_id__in=customer_ids)
    ).values_list("id", flat=True)
    deleted += await MovedRow.filter(merge_id__in=list(merges)).delete()
    deleted += await Merge.filter(id__in=list(merges)).delete()
    return deleted
