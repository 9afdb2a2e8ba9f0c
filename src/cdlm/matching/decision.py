"""What a match run does with a scored pair: merge it, queue it for review, or drop it.

A pure decision between the engine's scores and the writes of a run. The thresholds are
match probabilities (``CDLM_MATCH_REVIEW_ABOVE``, ``CDLM_MATCH_AUTO_MERGE_ABOVE``). A pair at or
above the top is merged automatically only when nothing forbids it: a hard conflict between the
two records (:mod:`cdlm.matching.conflicts`), a legal hold on either profile, or automatic
merging switched off; it is queued for review instead. Pairs go to automatic merge as clusters,
most probable pair first: a pair joins two groups only when no member of one conflicts with a
member of the other, scored or not (two records that each look like a third are not always one
person); the pairs refused that way go to review.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """What becomes of a pair."""

    MERGE = "merge"
    REVIEW = "review"
    DROP = "drop"


class Hold(StrEnum):
    """Why a pair above the top threshold still waits for a steward (besides conflicts)."""

    LEGAL_HOLD = "legal_hold"
    CLUSTER_CONFLICT = "cluster_conflict"
    DECIDED = "decided_not_a_match"  # a steward said two people; one side changed since


@dataclass(frozen=True)
class Thresholds:
    """Match probabilities: at or above ``review_above`` a pair is queued; at or above
    ``auto_merge_above`` (None: never) it is merged."""

    review_above: float
    auto_merge_above: float | None


@dataclass(frozen=True)
class Verdict:
    """The decision on one pair, with what kept it from an automatic merge."""

    action: Action
    reasons: tuple[str, ...] = ()


def decide(
    probability: float, conflicts: Iterable[str], held: bool, thresholds: Thresholds
) -> Verdict:
    """The decision on one pair, before clusters are considered."""
    if probability < thresholds.review_above:
        return Verdict(Action.DROP)
    reasons = sorted(str(c) for c in conflicts)
    if held:
        reasons.append(Hold.LEGAL_HOLD.value)
    top = thresholds.auto_merge_above
    if top is not None and probability >= top and not reasons:
        return Verdict(Action.MERGE)
    return Verdict(Action.REVIEW, tuple(reasons))


Pair = tuple[uuid.UUID, uuid.UUID]


@dataclass(frozen=True)
class MergePlan:
    """One cluster to merge: every member into the survivor, and the pairs behind it."""

    survivor: uuid.UUID
    merged: tuple[uuid.UUID, ...]


def plan_merges(
    to_merge: Mapping[Pair, float],
    conflicted: Callable[[uuid.UUID, uuid.UUID], bool],
    seniority: Mapping[uuid.UUID, tuple[object, ...]],
) -> tuple[list[MergePlan], set[Pair]]:
    """Group the pairs decided MERGE into clusters, most probable pair first: a pair joins two
    groups only when no member of one conflicts with a member of the other; a pair refused that
    way is returned to be reviewed instead. Each group of two or more becomes a
    :class:`MergePlan` whose most senior member (smallest ``seniority`` key, e.g.
    (created_at, id)) survives."""
    parent: dict[uuid.UUID, uuid.UUID] = {}
    members: dict[uuid.UUID, list[uuid.UUID]] = {}

    def root(node: uuid.UUID) -> uuid.UUID:
        if node not in parent:
            parent[node] = node
            members[node] = [node]
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    reviewed: set[Pair] = set()
    for pair in sorted(to_merge, key=lambda p: (-to_merge[p], p)):
        one, other = root(pair[0]), root(pair[1])
        if one == other:
            continue
        if any(conflicted(a, b) for a in members[one] for b in members[other]):
            reviewed.add(pair)
            continue
        keep, fold = min(one, other), max(one, other)
        parent[fold] = keep
        members[keep].extend(members.pop(fold))
    plans = []
    for group in sorted(members.values(), key=min):
        if len(group) > 1:
            ordered = sorted(group, key=lambda m: seniority[m])
            plans.append(MergePlan(ordered[0], tuple(ordered[1:])))
    return plans, reviewed
