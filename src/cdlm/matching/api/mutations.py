"""Mutations of integration: resolving a review-queue pair, merging two profiles and undoing
a merge. Each returns its own result union listing exactly the errors it can return."""

import uuid
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.core.errors import FieldIssue, NotFound, ValidationFailed
from cdlm.customers.api.reading import customer_nodes
from cdlm.customers.api.types import CustomerNode
from cdlm.customers.survivorship import trust_table
from cdlm.graphql.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    Outcomes,
    PolicyViolationError,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.relay import parse_id
from cdlm.matching import merge as merging
from cdlm.matching import service
from cdlm.matching.api.types import (
    CUSTOMER,
    CUSTOMER_MERGE,
    DECIDERS,
    MATCH_CANDIDATE,
    CustomerMerge,
    MatchCandidateNode,
)
from cdlm.matching.service import Resolution


def _two_ids(first: tuple[str, str], second: tuple[str, str]) -> tuple[uuid.UUID, uuid.UUID]:
    """Two customer ids of an input, ``(value, path)`` each; both problems reported at once."""
    found: list[uuid.UUID] = []
    issues = []
    for value, path in (first, second):
        try:
            found.append(parse_id(value, path, CUSTOMER))
        except ValidationFailed as refused:
            issues += refused.issues or [FieldIssue(path, refused.code, refused.message)]
    if issues:
        raise ValidationFailed.from_issues(issues)
    return found[0], found[1]


async def _customer(info: Info[Any, Any], customer_id: uuid.UUID) -> CustomerNode:
    """A customer of a payload, read as the field's selection asks (after the change, never
    from a request cache) and audited."""
    node = (await customer_nodes(info, [customer_id]))[0]
    if node is None:  # erased by another request since the change: nothing left to show
        raise NotFound("This customer no longer exists.")
    return node


@strawberry.input(description="Decide whether a review-queue pair is one person.")
class ResolveMatchCandidateInput:
    id: strawberry.ID = strawberry.field(description="Global id of the match candidate.")
    decision: Resolution = strawberry.field(description="One person (MERGE) or two.")
    note: str | None = strawberry.field(
        default=None,
        description="Why, for the other stewards (at most 500 characters); null or omitted: "
        "no note. Sealed with the profile: erasing the person shreds it.",
    )


@strawberry.type(
    description="The pair as decided; for MERGE also the merge and the surviving profile."
)
class MatchCandidateResolved:
    candidate: MatchCandidateNode = strawberry.field(
        description="The pair, now MERGED or NOT_A_MATCH."
    )
    merge: CustomerMerge | None = strawberry.field(
        description="The merge made (kind REVIEW); null for NOT_A_MATCH."
    )
    survivor_id: strawberry.Private[uuid.UUID | None]

    @strawberry.field(
        description="The profile that stayed, with everything of the other (the profile "
        "created first survives); null for NOT_A_MATCH. Masked for your role."
    )
    async def survivor(self, info: Info[Any, Any]) -> CustomerNode | None:
        if self.survivor_id is None:
            return None
        return await _customer(info, self.survivor_id)


@strawberry.input(description="Merge two profiles of one person.")
class MergeCustomersInput:
    survivor_id: strawberry.ID = strawberry.field(
        description="Global id of the profile that stays (its id is the one kept)."
    )
    merged_id: strawberry.ID = strawberry.field(
        description="Global id of the profile merged into it; afterwards it answers with the "
        "survivor."
    )
    reason: str = strawberry.field(
        description="Why they are one person (required, at most 500 characters)."
    )


@strawberry.type(description="The surviving profile and the merge.")
class CustomersMerged:
    merge: CustomerMerge = strawberry.field(description="The merge made (kind MANUAL).")
    survivor_id: strawberry.Private[uuid.UUID]

    @strawberry.field(
        description="The surviving profile with everything of the merged one (profile "
        "rebuilt, most restrictive consent). Masked for your role."
    )
    async def survivor(self, info: Info[Any, Any]) -> CustomerNode:
        return await _customer(info, self.survivor_id)


@strawberry.input(description="Undo a merge: two profiles again.")
class UnmergeCustomerInput:
    merge_id: strawberry.ID = strawberry.field(
        description="Global id of the merge to undo (a CustomerMerge, e.g. from "
        "`Customer.mergeHistory`)."
    )
    reason: str = strawberry.field(
        description="Why they are two people (required, at most 500 characters)."
    )


@strawberry.type(description="Both profiles, told apart again, and the merge undone.")
class CustomerUnmerged:
    merge: CustomerMerge = strawberry.field(
        description="The merge, now with `unmergedAt` and `unmergeReason`."
    )
    survivor_id: strawberry.Private[uuid.UUID]
    restored_id: strawberry.Private[uuid.UUID]

    @strawberry.field(
        description="The profile that had survived, rebuilt without what the other brought. "
        "Masked for your role."
    )
    async def survivor(self, info: Info[Any, Any]) -> CustomerNode:
        return await _customer(info, self.survivor_id)

    @strawberry.field(
        description="The profile given back, with what it brought and what arrived for it "
        "since (by its identifiers). Masked for your role."
    )
    async def restored(self, info: Info[Any, Any]) -> CustomerNode:
        return await _customer(info, self.restored_id)


_CANNOT_MERGE = (
    "a profile was merged into another already (ALREADY_MERGED) or erased (CUSTOMER_ERASED)"
)
_RESTRICTED = "processing of a profile is restricted, GDPR Art. 18 (PROCESSING_RESTRICTED)"

RESOLVE = Outcomes(
    "ResolveMatchCandidateResult",
    MatchCandidateResolved,
    {
        ValidationError: "`input.id` is not a match candidate's id (INVALID_ID), or the note "
        "is too long (TOO_LONG)",
        NotFoundError: "no match candidate has the id, or a profile of the pair no longer "
        "exists (field `input.id`)",
        InvalidStateError: "the pair is not PENDING (a NOT_A_MATCH pair may still be resolved "
        f"as MERGE), or the decision is MERGE and {_CANNOT_MERGE} (field `input.id`)",
        PolicyViolationError: f"the decision is MERGE and {_RESTRICTED} (field `input.id`)",
    },
)
MERGE = Outcomes(
    "MergeCustomersResult",
    CustomersMerged,
    {
        ValidationError: "an id is not a customer's id (INVALID_ID), both ids are the same "
        "customer (SAME_CUSTOMER), or the reason is blank (REQUIRED) or too long (TOO_LONG)",
        NotFoundError: "no customer has one of the ids",
        InvalidStateError: _CANNOT_MERGE,
        PolicyViolationError: _RESTRICTED,
        ConflictError: "a steward decided the two are different people (MARKED_NOT_A_MATCH): "
        "resolve their match candidate as MERGE instead",
    },
)
UNMERGE = Outcomes(
    "UnmergeCustomerResult",
    CustomerUnmerged,
    {
        ValidationError: "`input.mergeId` is not a merge's id (INVALID_ID), or the reason is "
        "blank (REQUIRED) or too long (TOO_LONG)",
        NotFoundError: "no merge has the id",
        InvalidStateError: "the merge was undone already (ALREADY_UNMERGED), the person was "
        "erased since (CUSTOMER_ERASED), or the survivor was merged into another profile "
        "since: undo that merge first (ALREADY_MERGED)",
    },
)
ResolveMatchCandidateResult = Annotated[
    MatchCandidateResolved
    | ValidationError
    | NotFoundError
    | InvalidStateError
    | PolicyViolationError,
    RESOLVE.marker,
]
MergeCustomersResult = Annotated[
    CustomersMerged
    | ValidationError
    | NotFoundError
    | InvalidStateError
    | PolicyViolationError
    | ConflictError,
    MERGE.marker,
]
UnmergeCustomerResult = Annotated[
    CustomerUnmerged | ValidationError | NotFoundError | InvalidStateError, UNMERGE.marker
]


@strawberry.type
class MatchingMutation:
    @strawberry.mutation(
        description=RESOLVE.describe(
            "Decide a review-queue pair: MERGE them (the profile created first survives) or "
            "NOT_A_MATCH (not proposed again unless one side's compared data changes)."
        ),
        extensions=allow(*DECIDERS, personal=True),
    )
    @errors_as_data
    async def resolve_match_candidate(
        self,
        info: Info[Any, Any],
        input: Annotated[
            ResolveMatchCandidateInput,
            strawberry.argument(description="The pair and the decision."),
        ],
    ) -> ResolveMatchCandidateResult:
        actor = await require_principal(info)
        done = await service.resolve(
            actor,
            info.context.vault,
            service.ResolveInput(
                parse_id(input.id, "input.id", MATCH_CANDIDATE), input.decision, input.note
            ),
            trust_table(info.context.settings.source_trust),
        )
        return MatchCandidateResolved(
            candidate=MatchCandidateNode.from_row(done.candidate),
            merge=CustomerMerge.from_row(done.merge) if done.merge else None,
            survivor_id=done.merge.survivor_id if done.merge else None,
        )

    @strawberry.mutation(
        description=MERGE.describe(
            "Merge two profiles of one person: everything of the merged profile moves to the "
            "survivor, and the merged id answers with the survivor until the merge is undone."
        ),
        extensions=allow(*DECIDERS, personal=True),
    )
    @errors_as_data
    async def merge_customers(
        self,
        info: Info[Any, Any],
        input: Annotated[
            MergeCustomersInput, strawberry.argument(description="The two profiles and why.")
        ],
    ) -> MergeCustomersResult:
        actor = await require_principal(info)
        made = await merging.merge(
            actor,
            info.context.vault,
            merging.MergeInput(
                *_two_ids(
                    (input.survivor_id, "input.survivorId"), (input.merged_id, "input.mergedId")
                ),
                input.reason,
            ),
            trust_table(info.context.settings.source_trust),
        )
        return CustomersMerged(merge=CustomerMerge.from_row(made), survivor_id=made.survivor_id)

    @strawberry.mutation(
        description=UNMERGE.describe(
            "Undo a merge: both profiles are rebuilt from what each brought, and the pair is "
            "remembered as NOT_A_MATCH."
        ),
        extensions=allow(*DECIDERS, personal=True),
    )
    @errors_as_data
    async def unmerge_customer(
        self,
        info: Info[Any, Any],
        input: Annotated[
            UnmergeCustomerInput, strawberry.argument(description="The merge to undo and why.")
        ],
    ) -> UnmergeCustomerResult:
        actor = await require_principal(info)
        undone = await merging.unmerge(
            actor,
            info.context.vault,
            merging.UnmergeInput(
                parse_id(input.merge_id, "input.mergeId", CUSTOMER_MERGE), input.reason
            ),
            trust_table(info.context.settings.source_trust),
        )
        return CustomerUnmerged(
            merge=CustomerMerge.from_row(undone),
            survivor_id=undone.survivor_id,
            restored_id=undone.merged_id,
        )
