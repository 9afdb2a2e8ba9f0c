"""The review queue: candidates for stewards, their resolution, and the evidence of runs.

A candidate resolved as ``MERGE`` is merged (the older profile survives); one resolved as
``NOT_A_MATCH`` is remembered with the keyed digests of both profiles' compared values, and a
later run proposes the pair again only when one of them changed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.core import clock
from cdlm.core.errors import (
    DomainError,
    ErrorCode,
    InvalidStateTransition,
    NotFound,
    ValidationFailed,
)
from cdlm.core.principal import Principal
from cdlm.core.text import staff_text
from cdlm.core.transactions import retrying
from cdlm.core.vocabulary import SourceKind
from cdlm.customers.models import Customer
from cdlm.matching.merge import MergeInput, merge_locked
from cdlm.matching.models import (
    CandidateStatus,
    MatchCandidate,
    MatchRun,
    Merge,
    MergeKind,
    RunStatus,
)
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import Vault


class Resolution(StrEnum):
    """A steward's decision on a candidate."""

    MERGE = "merge"
    NOT_A_MATCH = "not_a_match"


@dataclass(frozen=True)
class CandidateFilter:
    """Criteria of the review queue (combined with AND); ``customer_id``: pairs with this
    profile on either side."""

    status: CandidateStatus | None = CandidateStatus.PENDING
    min_probability: float | None = None
    customer_id: uuid.UUID | None = None


@dataclass(frozen=True)
class RunFilter:
    """Criteria of the list of match runs."""

    status: RunStatus | None = None


@dataclass(frozen=True)
class ResolveInput:
    """Resolve candidate ``candidate_id`` with ``decision`` (and an optional note)."""

    candidate_id: uuid.UUID
    decision: Resolution
    note: str | None = None


@dataclass(frozen=True)
class Resolved:
    """The candidate as decided, and the merge it made (for ``MERGE``)."""

    candidate: MatchCandidate
    merge: Merge | None


def candidates(criteria: CandidateFilter) -> QuerySet[MatchCandidate]:
    """Candidates matching ``criteria`` (paginate it)."""
    if criteria.min_probability is not None and not 0.0 <= criteria.min_probability <= 1.0:
        raise ValidationFailed(
            "A probability is between 0 and 1.",
            field="filter.minProbability",
            code=ErrorCode.IMPLAUSIBLE,
        )
    query = MatchCandidate.all()
    if criteria.status is not None:
        query = query.filter(status=criteria.status)
    if criteria.min_probability is not None:
        query = query.filter(probability__gte=criteria.min_probability)
    if criteria.customer_id is not None:
        query = query.filter(Q(left_id=criteria.customer_id) | Q(right_id=criteria.customer_id))
    return query


def runs(criteria: RunFilter | None = None) -> QuerySet[MatchRun]:
    """Match runs matching ``criteria`` (paginate it)."""
    query = MatchRun.all()
    if criteria is not None and criteria.status is not None:
        query = query.filter(status=criteria.status)
    return query


async def candidates_by_ids(ids: list[uuid.UUID]) -> dict[uuid.UUID, MatchCandidate]:
    """The candidates with these ids (one query; unknown ids are absent)."""
    return {row.id: row for row in await MatchCandidate.filter(id__in=ids)} if ids else {}


async def runs_by_ids(ids: list[uuid.UUID]) -> dict[uuid.UUID, MatchRun]:
    """The match runs with these ids (one query; unknown ids are absent)."""
    return {row.id: row for row in await MatchRun.filter(id__in=ids)} if ids else {}


async def merges_by_ids(ids: list[uuid.UUID]) -> dict[uuid.UUID, Merge]:
    """The merges with these ids (one query; unknown ids are absent)."""
    return {row.id: row for row in await Merge.filter(id__in=ids)} if ids else {}


async def _survivor_first(candidate: MatchCandidate) -> tuple[uuid.UUID, uuid.UUID]:
    """(survivor, merged): the profile created first survives (its id is the one known
    longest)."""
    rows = await Customer.filter(id__in=[candidate.left_id, candidate.right_id]).values_list(
        "id", "created_at"
    )
    created = {uuid.UUID(str(i)): at for i, at in rows}
    if len(created) < 2:
        raise NotFound("A profile of this pair no longer exists.", field="input.id")
    ordered = sorted(created, key=lambda c: (created[c], c))
    return ordered[0], ordered[1]


async def resolve(
    actor: Principal,
    vault: Vault,
    change: ResolveInput,
    trust: dict[SourceKind, int] | None = None,
) -> Resolved:
    """The ``resolveMatchCandidate`` operation: one transaction (retried after a deadlock),
    audited; a refused merge leaves the candidate pending and both profiles as they were."""
    note = staff_text(change.note, "input.note", required=False)

    async def work() -> Resolved:
        async with in_transaction():
            candidate = (
                await MatchCandidate.filter(id=change.candidate_id).select_for_update().first()
            )
            if candidate is None:
                raise NotFound("No match candidate has this id.", field="input.id")
            # A steward may merge a pair said to be two people (they changed their mind).
            reconsidered = (
                candidate.status is CandidateStatus.NOT_A_MATCH
                and change.decision is Resolution.MERGE
            )
            if candidate.status is not CandidateStatus.PENDING and not reconsidered:
                raise InvalidStateTransition(
                    f"This candidate is {candidate.status.value.replace('_', ' ')}, not pending.",
                    field="input.id",
                )
            now = clock.now()
            made = None
            if change.decision is Resolution.MERGE:
                survivor, merged = await _survivor_first(candidate)
                try:
                    made = await merge_locked(
                        actor,
                        vault,
                        MergeInput(
                            survivor,
                            merged,
                            note,
                            MergeKind.REVIEW,
                            candidate.id,
                            candidate.probability,
                        ),
                        trust,
                    )
                except DomainError as refused:
                    # The pair's profiles are named by the candidate, not by survivorId and
                    # mergedId as in mergeCustomers.
                    refused.field = "input.id"
                    raise
                await candidate.refresh_from_db()
            else:
                candidate.status = CandidateStatus.NOT_A_MATCH
                if note is not None:
                    key = await vault.customer_key(candidate.left_id)
                    candidate.note_sealed = vault.seal(
                        key, candidate.left_id, f"candidate-note:{candidate.id}", note
                    )
            candidate.decided_at = now
            candidate.decided_by_kind = actor.kind.value
            candidate.decided_by_id = actor.id
            candidate.updated_at = now
            await candidate.save()
            await audit.record(
                actor,
                f"match_candidate.{change.decision.value}",
                target_type="match_candidate",
                target_id=candidate.id,
            )
            return Resolved(candidate, made)

    return await retrying(work)


def open_note(vault: Vault, key: bytes | None, candidate: MatchCandidate) -> str | None:
    """A candidate's note (None without one, or once the profile's key is gone)."""
    if candidate.note_sealed is None or key is None:
        return None
    text: str = vault.open(
        key, candidate.left_id, f"candidate-note:{candidate.id}", bytes(candidate.note_sealed)
    )
    return text


def open_reason(vault: Vault, key: bytes | None, merge: Merge, *, unmerge: bool) -> str | None:
    """A merge's (or its unmerge's) reason, opened with the survivor's key."""
    sealed = merge.unmerge_reason_sealed if unmerge else merge.reason_sealed
    if sealed is None or key is None:
        return None
    text: str = vault.open(
        key,
        merge.survivor_id,
        sealed_for.UNMERGE_REASON if unmerge else sealed_for.MERGE_REASON,
        bytes(sealed),
    )
    return text
