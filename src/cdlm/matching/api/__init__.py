"""GraphQL of integration: the review queue, merges, unmerges and the evidence of match runs.

Stewards and admins decide; privacy officers read; analysts see the queue with profiles masked
as everywhere (scores and comparison levels hold no values).
"""

from cdlm.matching.api.mutations import MatchingMutation
from cdlm.matching.api.queries import MatchingQuery
from cdlm.matching.api.types import (
    NODE_KINDS,
    CustomerMerge,
    MatchCandidateNode,
    MatchRunNode,
)

__all__ = [
    "NODE_KINDS",
    "CustomerMerge",
    "MatchCandidateNode",
    "MatchRunNode",
    "MatchingMutation",
    "MatchingQuery",
]
