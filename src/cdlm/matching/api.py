"""GraphQL of integration: the review queue, merges, unmerges and the evidence of match runs.

Stewards and admins decide; privacy officers read; analysts see the queue with profiles masked
as everywhere (scores and comparison levels hold no values).
"""

import uuid
from datetime import datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.core.errors import NotFound
from cdlm.core.roles import Role
from cdlm.customers import loaders as customer_loaders
from cdlm.customers.api.reading import customer_node, customer_nodes
from cdlm.customers.api.types import CustomerNode
from cdlm.customers.survivorship import trust_table
from cdlm.graphql.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    PolicyViolationError,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.pagination import Connection, SortKey, paginate
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.relay import NodeKind
from cdlm.graphql.scalars import parse_id
from cdlm.matching import merge as merging
from cdlm.matching import service
from cdlm.matching.models import (
    CandidateStatus,
    MatchCandidate,
    MatchRun,
    Merge,
    MergeKind,
    RunStatus,
)

DECIDERS = (Role.ADMIN, Role.STEWARD)
READERS = (Role.ADMIN, Role.STEWARD, Role.PRIVACY_OFFICER, Role.ANALYST)
#: Staff text (notes, reasons) may hold anything: not for analysts.
TEXT_READERS = (Role.ADMIN, Role.STEWARD, Role.PRIVACY_OFFICER)
RUN_READERS = (Role.ADMIN, Role.STEWARD, Role.PRIVACY_OFFICER)
MOST_PROBABLE = [SortKey("probability", descending=True), SortKey("id")]
NEWEST_FIRST = [SortKey("started_at", descending=True), SortKey("id")]

strawberry.enum(
    CandidateStatus, name="MatchCandidateStatus", description="Where a proposed pair stands."
)
strawberry.enum(MergeKind, name="MergeKind", description="How a merge was decided.")
strawberry.enum(RunStatus, name="MatchRunStatus", description="The state of a match run.")


@strawberry.enum(description="A steward's decision on a candidate.")
class MatchDecision(Enum):
    MERGE = "merge"
    NOT_A_MATCH = "not_a_match"


async def _customer(info: Info[Any, Any], customer_id: uuid.UUID) -> CustomerNode | None:
    return await customer_node(info, customer_id)


async def _survivor_key(info: Info[Any, Any], customer_id: uuid.UUID) -> bytes | None:
    key: bytes | None = await info.context.loaders.get(
        customer_loaders.data_keys_by_customer, info.context.vault
    ).load(customer_id)
    return key


@strawberry.type(description="One comparison of a pair: the level reached and its weight.")
class MatchComparison:
    name: str = strawberry.field(description="What was compared, e.g. given_name.")
    level: str = strawberry.field(description="The level reached, e.g. Jaro-Winkler >= 0.92.")
    weight: float = strawberry.field(
        description="Its match weight (log2 Bayes factor): positive for, negative against."
    )


@strawberry.type(name="MatchCandidate", description="Two profiles that may be one person.")
class MatchCandidateNode:
    id: strawberry.ID
    status: CandidateStatus
    probability: float = strawberry.field(description="Match probability, 0 to 1.")
    match_weight: float = strawberry.field(description="Sum of the weights and the prior.")
    comparisons: list[MatchComparison] = strawberry.field(description="Why these two.")
    conflicts: list[str] = strawberry.field(
        description="What kept the pair from an automatic merge (e.g. birth_date_differs)."
    )
    model_version: int
    found_at: datetime
    updated_at: datetime
    decided_at: datetime | None
    row: strawberry.Private[MatchCandidate]

    @classmethod
    def from_row(cls, row: MatchCandidate) -> "MatchCandidateNode":
        return cls(
            id=strawberry.ID(str(row.id)),
            status=row.status,
            probability=row.probability,
            match_weight=row.match_weight,
            comparisons=[
                MatchComparison(name=c["name"], level=c["level"], weight=c["weight"])
                for c in row.comparisons
            ],
            conflicts=list(row.conflicts),
            model_version=row.model_version,
            found_at=row.found_at,
            updated_at=row.updated_at,
            decided_at=row.decided_at,
            row=row,
        )

    @strawberry.field(description="One profile of the pair (masked per role as everywhere).")
    async def left(self, info: Info[Any, Any]) -> CustomerNode | None:
        return await _customer(info, self.row.left_id)

    @strawberry.field(description="The other profile of the pair.")
    async def right(self, info: Info[Any, Any]) -> CustomerNode | None:
        return await _customer(info, self.row.right_id)

    @strawberry.field(description="The steward's note.", extensions=allow(*TEXT_READERS))
    async def note(self, info: Info[Any, Any]) -> str | None:
        key = await _survivor_key(info, self.row.left_id)
        return service.open_note(info.context.vault, key, self.row)


@strawberry.type(description="One merge of a profile into another, and its undoing.")
class CustomerMerge:
    id: strawberry.ID
    kind: MergeKind
    survivor_id: strawberry.ID
    merged_id: strawberry.ID
    probability: float | None = strawberry.field(description="For a merge found by matching.")
    merged_at: datetime
    unmerged_at: datetime | None
    row: strawberry.Private[Merge]

    @classmethod
    def from_row(cls, row: Merge) -> "CustomerMerge":
        return cls(
            id=strawberry.ID(str(row.id)),
            kind=row.kind,
            survivor_id=strawberry.ID(str(row.survivor_id)),
            merged_id=strawberry.ID(str(row.merged_id)),
            probability=row.probability,
            merged_at=row.merged_at,
            unmerged_at=row.unmerged_at,
            row=row,
        )

    @strawberry.field(description="Why it was merged.", extensions=allow(*TEXT_READERS))
    async def reason(self, info: Info[Any, Any]) -> str | None:
        key = await _survivor_key(info, self.row.survivor_id)
        return service.open_reason(info.context.vault, key, self.row, unmerge=False)

    @strawberry.field(description="Why it was undone.", extensions=allow(*TEXT_READERS))
    async def unmerge_reason(self, info: Info[Any, Any]) -> str | None:
        key = await _survivor_key(info, self.row.survivor_id)
        return service.open_reason(info.context.vault, key, self.row, unmerge=True)


@strawberry.type(name="MatchRun", description="The evidence of one match run.")
class MatchRunNode:
    id: strawberry.ID
    status: RunStatus
    full: bool
    trained: bool
    model_version: int | None
    started_at: datetime
    finished_at: datetime | None
    profiles: int = strawberry.field(description="Profiles loaded.")
    focus: int = strawberry.field(description="Profiles compared against their blocks.")
    compared_pairs: int
    candidates: int
    queued: int = strawberry.field(description="Pairs sent to review.")
    auto_merged: int
    duration_seconds: float

    @classmethod
    def from_row(cls, row: MatchRun) -> "MatchRunNode":
        return cls(
            id=strawberry.ID(str(row.id)),
            status=row.status,
            full=row.full,
            trained=row.trained,
            model_version=row.model_version,
            started_at=row.started_at,
            finished_at=row.finished_at,
            profiles=row.profiles,
            focus=row.focus,
            compared_pairs=row.compared_pairs,
            candidates=row.candidates,
            queued=row.queued,
            auto_merged=row.auto_merged,
            duration_seconds=row.duration_seconds,
        )


@strawberry.input(description="Criteria of the review queue; they combine with AND.")
class MatchCandidateFilter:
    status: CandidateStatus | None = strawberry.field(
        default=CandidateStatus.PENDING, description="PENDING unless asked otherwise; null: all."
    )
    min_probability: float | None = None


@strawberry.type
class MatchingQuery:
    @strawberry.field(
        description="The review queue: pairs that may be one person, most probable first.",
        extensions=allow(*READERS),
    )
    async def match_candidates(
        self,
        info: Info[Any, Any],
        filter: MatchCandidateFilter | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Connection[MatchCandidateNode]:
        given = filter or MatchCandidateFilter()
        criteria = service.CandidateFilter(given.status, given.min_probability)
        page = await paginate(
            service.candidates(criteria), order=MOST_PROBABLE, first=first, after=after
        )
        return page.to_connection(MatchCandidateNode.from_row)

    @strawberry.field(description="Match runs, newest first.", extensions=allow(*RUN_READERS))
    async def match_runs(
        self, info: Info[Any, Any], first: int | None = None, after: str | None = None
    ) -> Connection[MatchRunNode]:
        page = await paginate(service.runs(), order=NEWEST_FIRST, first=first, after=after)
        return page.to_connection(MatchRunNode.from_row)


@strawberry.input(description="Decide whether a candidate pair is one person.")
class ResolveMatchCandidateInput:
    id: strawberry.ID
    decision: MatchDecision
    note: str | None = strawberry.field(default=None, description="At most 500 characters.")


@strawberry.type(description="The candidate as decided; for MERGE, the merge and survivor.")
class MatchCandidateResolved:
    candidate: MatchCandidateNode
    merge: CustomerMerge | None
    customer: CustomerNode | None = strawberry.field(description="The surviving profile.")


@strawberry.input(description="Merge two profiles of one person.")
class MergeCustomersInput:
    survivor_id: strawberry.ID = strawberry.field(description="The profile that stays.")
    merged_id: strawberry.ID = strawberry.field(description="The profile merged into it.")
    reason: str = strawberry.field(description="Why they are one person (at most 500).")


@strawberry.type(description="The surviving profile and the merge.")
class CustomersMerged:
    customer: CustomerNode
    merge: CustomerMerge


@strawberry.input(description="Undo a merge: both profiles again.")
class UnmergeCustomerInput:
    merge_id: strawberry.ID
    reason: str = strawberry.field(description="Why they are two people (at most 500).")


@strawberry.type(description="Both profiles, told apart again.")
class CustomerUnmerged:
    customer: CustomerNode = strawberry.field(description="The profile that had survived.")
    restored: CustomerNode = strawberry.field(description="The profile given back.")
    merge: CustomerMerge


_MERGE_ERRORS = (
    ValidationError | NotFoundError | InvalidStateError | PolicyViolationError | ConflictError
)
ResolveMatchCandidateResult = Annotated[
    MatchCandidateResolved | _MERGE_ERRORS, strawberry.union("ResolveMatchCandidateResult")
]
MergeCustomersResult = Annotated[
    CustomersMerged | _MERGE_ERRORS, strawberry.union("MergeCustomersResult")
]
UnmergeCustomerResult = Annotated[
    CustomerUnmerged | ValidationError | NotFoundError | InvalidStateError,
    strawberry.union("UnmergeCustomerResult"),
]


async def _node(info: Info[Any, Any], customer_id: uuid.UUID, below: str) -> CustomerNode:
    """A customer of a payload as its selection (at ``below``) asks for it, read and audited."""
    node = (await customer_nodes(info, [customer_id], below=below))[0]
    if node is None:
        raise NotFound("No customer has this id.")
    return node


@strawberry.type
class MatchingMutation:
    @strawberry.mutation(
        description="Decide a review-queue pair: MERGE them (the older profile survives) or "
        "NOT_A_MATCH (never proposed again unless one side's data changes).",
        extensions=allow(*DECIDERS),
    )
    @errors_as_data
    async def resolve_match_candidate(
        self, info: Info[Any, Any], input: ResolveMatchCandidateInput
    ) -> ResolveMatchCandidateResult:
        actor = await require_principal(info)
        done = await service.resolve(
            actor,
            info.context.vault,
            service.ResolveInput(
                parse_id(input.id, "input.id"),
                service.Resolution(input.decision.value),
                input.note,
            ),
            trust_table(info.context.settings.source_trust),
        )
        survivor = await _node(info, done.merge.survivor_id, "customer.") if done.merge else None
        return MatchCandidateResolved(
            candidate=MatchCandidateNode.from_row(done.candidate),
            merge=CustomerMerge.from_row(done.merge) if done.merge else None,
            customer=survivor,
        )

    @strawberry.mutation(
        description="Merge two profiles of one person: everything moves to the survivor and "
        "the merged id answers with it.",
        extensions=allow(*DECIDERS),
    )
    @errors_as_data
    async def merge_customers(
        self, info: Info[Any, Any], input: MergeCustomersInput
    ) -> MergeCustomersResult:
        actor = await require_principal(info)
        made = await merging.merge(
            actor,
            info.context.vault,
            merging.MergeInput(
                parse_id(input.survivor_id, "input.survivorId"),
                parse_id(input.merged_id, "input.mergedId"),
                input.reason,
            ),
            trust_table(info.context.settings.source_trust),
        )
        return CustomersMerged(
            customer=await _node(info, made.survivor_id, "customer."),
            merge=CustomerMerge.from_row(made),
        )

    @strawberry.mutation(
        description="Undo a merge: both profiles are rebuilt from what each brought.",
        extensions=allow(*DECIDERS),
    )
    @errors_as_data
    async def unmerge_customer(
        self, info: Info[Any, Any], input: UnmergeCustomerInput
    ) -> UnmergeCustomerResult:
        actor = await require_principal(info)
        undone = await merging.unmerge(
            actor,
            info.context.vault,
            merging.UnmergeInput(parse_id(input.merge_id, "input.mergeId"), input.reason),
            trust_table(info.context.settings.source_trust),
        )
        return CustomerUnmerged(
            customer=await _node(info, undone.survivor_id, "customer."),
            restored=await _node(info, undone.merged_id, "restored."),
            merge=CustomerMerge.from_row(undone),
        )


#: How node(id:) fetches this domain's objects.
NODE_KINDS: tuple[NodeKind, ...] = ()
