"""What a match run does with a scored pair: merge it, queue it for review, or drop it.

A pure decision between the engine's scores and the writes of a run. The thresholds are
match probabilities (``CDLM_MATCH_REVIEW_ABOVE``, ``CDLM_MATCH_AUTO_MERGE_ABOVE``). A pair at or
above the top is merged automatically only when nothing forbids it: a hard conflict between the
two records (:mod:`cdlm.matching.conflicts`), a legal hold on either profile, or automatic
merging switched off; it is queued for review instead. Pairs go to automatic merge as clusters:
when several pairs join three or more profiles, every two members of the cluster, scored or
not, must be free of hard conflicts, or the whole cluster goes to review (two records that each
look like a third are not always one person).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from itertools import combinations


class Action(StrEnum):
    """What becomes of a pair."""

    MERGE = "merge"
    REVIEW = "review"
    DROP = "drop"


class Hold(StrEnum):
    """Why a pair above the top threshold still waits for a steward (besides conflicts)."""

    LEGAL_HOLD = "legal_hold"
    CLUSTER_CONFLICT = "cluster_conflict"


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


def clusters(pairs: Iterable[Pair]) -> list[list[uuid.UUID]]:
    """Connected components of ``pairs`` (each sorted; in order of their smallest member)."""
    parent: dict[uuid.UUID, uuid.UUID] = {}

    def root(node: uuid.UUID) -> uuid.UUID:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]
            node = parent[node]
        return node

    for left, right in pairs:
        a, b = root(left), root(right)
        if a != b:
            parent[max(a, b)] = min(a, b)
    groups: dict[uuid.UUID, list[uuid.UUID]] = {}
    for node in parent:
        groups.setdefault(root(node), []).append(node)
    return sorted((sorted(g) for g in groups.values()), key=lambda g: g[0])


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
    """Group the pairs decided MERGE into clusters: a cluster whose members are pairwise free of
    conflicts becomes a :class:`MergePlan` (the most senior member survives: smallest
    ``seniority`` key, e.g. (created_at, id)); the pairs of any other cluster are returned to
    be reviewed instead."""
    plans: list[MergePlan] = []
    reviewed: set[Pair] = set()
    for members in clusters(to_merge):
        if any(conflicted(a, b) for a, b in combinations(members, 2)):
            reviewed.update(p for p in to_merge if p[0] in members)
            continue
        ordered = sorted(members, key=lambda m: seniority[m])
        plans.append(MergePlan(ordered[0], tuple(ordered[1:])))
    return plans, reviewed
