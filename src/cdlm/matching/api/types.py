"""The objects of integration in the API: match candidates, merges and match runs, their
enums, and how ``node(id:)`` fetches them."""

import uuid
from collections.abc import Sequence
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types.info import Info

from cdlm.core.roles import Role
from cdlm.customers import loaders as customer_loaders
from cdlm.customers.api.reading import customer_node
from cdlm.customers.api.types import MERGE_READERS, CustomerNode
from cdlm.graphql.enums import describe_enum
from cdlm.graphql.pagination import CountedConnection
from cdlm.graphql.permissions import allow
from cdlm.graphql.relay import Node, NodeKind, global_id
from cdlm.matching import loaders, service
from cdlm.matching.conflicts import Conflict
from cdlm.matching.decision import Hold
from cdlm.matching.models import (
    CandidateStatus,
    MatchCandidate,
    MatchRun,
    Merge,
    MergeKind,
    RunStatus,
)
from cdlm.matching.service import Resolution

#: Who decides pairs, merges and unmerges.
DECIDERS = (Role.ADMIN, Role.STEWARD)
#: Who reads the review queue (analysts see its profiles masked, as everywhere).
READERS = (Role.ADMIN, Role.STEWARD, Role.PRIVACY_OFFICER, Role.ANALYST)
#: Staff text (notes, reasons) may hold anything: not for analysts.
TEXT_READERS = (Role.ADMIN, Role.STEWARD, Role.PRIVACY_OFFICER)
#: Who reads the evidence of match runs.
RUN_READERS = (Role.ADMIN, Role.STEWARD, Role.PRIVACY_OFFICER)

CUSTOMER = "Customer"
MATCH_CANDIDATE = "MatchCandidate"
CUSTOMER_MERGE = "CustomerMerge"
MATCH_RUN = "MatchRun"

describe_enum(
    CandidateStatus,
    "Where a pair proposed by matching stands.",
    {
        CandidateStatus.PENDING: "Waiting for a steward's decision: the review queue.",
        CandidateStatus.MERGED: "The two profiles were merged: by a steward (resolved as "
        "MERGE, or merged with mergeCustomers) or automatically by a match run.",
        CandidateStatus.NOT_A_MATCH: "They are two people: a steward said so, or a merge of "
        "them was undone. A match run proposes the pair again (as PENDING) only when the "
        "compared data of one side changes.",
        CandidateStatus.SUPERSEDED: "Nothing to decide any more: one side was merged into "
        "another profile meanwhile. The next match run scores the pair with the survivor.",
    },
    name="MatchCandidateStatus",
)
describe_enum(
    MergeKind,
    "How a merge was decided.",
    {
        MergeKind.MANUAL: "A steward or admin merged the profiles with mergeCustomers.",
        MergeKind.REVIEW: "A steward resolved a review-queue pair as MERGE "
        "(resolveMatchCandidate).",
        MergeKind.AUTOMATIC: "A match run merged them: their match probability was at or above "
        "the auto-merge threshold and nothing spoke against it.",
    },
    name="CustomerMergeKind",
)
describe_enum(
    RunStatus,
    "The state of a match run.",
    {
        RunStatus.RUNNING: "Under way. A run whose process was killed stays RUNNING until "
        "the next run starts, marks it INTERRUPTED and resumes its work.",
        RunStatus.FINISHED: "Every profile it set out to compare was compared.",
        RunStatus.INTERRUPTED: "Stopped early (its time budget was spent, or it was "
        "stopped): what it did is kept and the next run resumes where it got to.",
        RunStatus.FAILED: "Ended by an error; the candidates and merges it committed "
        "before the error are kept.",
    },
    name="MatchRunStatus",
)
describe_enum(
    Resolution,
    "A steward's decision on a review-queue pair.",
    {
        Resolution.MERGE: "One person: merge the two profiles. The profile created first "
        "survives; the other's id keeps answering with the survivor.",
        Resolution.NOT_A_MATCH: "Two people: the pair leaves the queue and is proposed again "
        "only when the compared data of one side changes.",
    },
    name="MatchDecision",
)


class ComparisonName(Enum):
    """What a comparison of a pair compares (the engine's comparisons, by name)."""

    GIVEN_NAME = "given_name"
    FAMILY_NAME = "family_name"
    BIRTH_DATE = "birth_date"
    EMAIL = "email"
    PHONE = "phone"
    ADDRESS = "address"
    EXTERNAL_ID = "external_id"


describe_enum(
    ComparisonName,
    "What one comparison of a match candidate compared.",
    {
        ComparisonName.GIVEN_NAME: "The given names (`profile.givenName`), nicknames and "
        "initials included.",
        ComparisonName.FAMILY_NAME: "The family names (`profile.familyName`).",
        ComparisonName.BIRTH_DATE: "The birth dates (`profile.birthDate`).",
        ComparisonName.EMAIL: "The email addresses (`profile.email`).",
        ComparisonName.PHONE: "The phone numbers (`profile.phone`).",
        ComparisonName.ADDRESS: "The postal addresses (`profile.address`: postal code, street "
        "and city).",
        ComparisonName.EXTERNAL_ID: "The ids source systems gave the profiles (identities of "
        "kind EXTERNAL_ID).",
    },
    name="MatchComparisonName",
)


class MatchConflict(Enum):
    """What kept a pair from an automatic merge: a hard conflict between the two records
    (:class:`cdlm.matching.conflicts.Conflict`) or a hold (:class:`cdlm.matching.decision.Hold`)."""

    EXTERNAL_ID_DIFFERS = Conflict.EXTERNAL_ID_DIFFERS.value
    BIRTH_DATE_DIFFERS = Conflict.BIRTH_DATE_DIFFERS.value
    HOUSEHOLD = Conflict.HOUSEHOLD.value
    LEGAL_HOLD = Hold.LEGAL_HOLD.value
    CLUSTER_CONFLICT = Hold.CLUSTER_CONFLICT.value
    DECIDED_NOT_A_MATCH = Hold.DECIDED.value


describe_enum(
    MatchConflict,
    "Why a pair scored high enough to merge automatically was queued for a steward instead.",
    {
        MatchConflict.EXTERNAL_ID_DIFFERS: "Both profiles carry an id of the same source system "
        "and none in common there (a system keeps one id per person).",
        MatchConflict.BIRTH_DATE_DIFFERS: "Both have a birth date and they differ (beyond day "
        "and month exchanged).",
        MatchConflict.HOUSEHOLD: "They share a phone or a postal address while their given "
        "names disagree: people living together.",
        MatchConflict.LEGAL_HOLD: "A legal hold is on one of the profiles.",
        MatchConflict.CLUSTER_CONFLICT: "Merging it would join a profile to another that "
        "conflicts with a member of its group.",
        MatchConflict.DECIDED_NOT_A_MATCH: "A steward said they are two people; one side "
        "changed since, so the question is open again, for a steward only.",
    },
    name="MatchConflict",
)


async def _data_key(info: Info[Any, Any], customer_id: uuid.UUID) -> bytes | None:
    key: bytes | None = await info.context.loaders.get(
        customer_loaders.data_keys_by_customer, info.context.vault
    ).load(customer_id)
    return key


@strawberry.type(
    description="One comparison of a pair: what was compared, the level reached and its "
    "weight. Holds no personal value."
)
class MatchComparison:
    name: ComparisonName = strawberry.field(description="What was compared.")
    level: str = strawberry.field(
        description="The level of agreement reached, for people, e.g. `Jaro-Winkler >= 0.92` "
        "or `Same postcode`. A level `(scored under EMAIL)` is weighed under the comparison "
        "named (a MatchComparisonName), and weighs 0 here."
    )
    weight: float = strawberry.field(
        description="Its match weight (log2 Bayes factor): positive for one person, negative "
        "against, 0 when it is scored under another comparison."
    )


@strawberry.type(
    name="MatchCandidate",
    description="Two profiles a match run scored as possibly one person, with the evidence "
    "(scores per comparison, no values) and the steward's decision.",
)
class MatchCandidateNode(Node):
    status: CandidateStatus = strawberry.field(description="Where the pair stands.")
    probability: float = strawberry.field(description="Match probability, 0 to 1.")
    match_weight: float = strawberry.field(
        description="The sum of the comparisons' weights and the prior (log2 odds)."
    )
    comparisons: list[MatchComparison] = strawberry.field(
        description="Why these two: each comparison with its level and weight."
    )
    conflicts: list[MatchConflict] = strawberry.field(
        description="What kept the pair from an automatic merge (empty when nothing did)."
    )
    model_version: int = strawberry.field(
        description="Version of the trained model that scored the pair (0: recorded by an "
        "unmerge, not scored)."
    )
    found_at: datetime = strawberry.field(description="When the pair was first proposed.")
    updated_at: datetime = strawberry.field(
        description="When the pair was last scored or its status changed."
    )
    decided_at: datetime | None = strawberry.field(
        description="When a steward decided it (or an unmerge said two people); null while "
        "pending, and when the pair was merged without a decision on it (automatically, or "
        "with mergeCustomers)."
    )
    left_id: strawberry.ID = strawberry.field(
        description="Global id of one profile of the pair (the `left` customer)."
    )
    right_id: strawberry.ID = strawberry.field(
        description="Global id of the other profile (the `right` customer)."
    )
    row: strawberry.Private[MatchCandidate]

    @classmethod
    def from_row(cls, row: MatchCandidate) -> "MatchCandidateNode":
        return cls(
            id=global_id(MATCH_CANDIDATE, row.id),
            status=row.status,
            probability=row.probability,
            match_weight=row.match_weight,
            comparisons=[
                MatchComparison(
                    name=ComparisonName(c["name"]), level=c["level"], weight=c["weight"]
                )
                for c in row.comparisons
            ],
            conflicts=[MatchConflict(c) for c in row.conflicts],
            model_version=row.model_version,
            found_at=row.found_at,
            updated_at=row.updated_at,
            decided_at=row.decided_at,
            left_id=global_id(CUSTOMER, row.left_id),
            right_id=global_id(CUSTOMER, row.right_id),
            row=row,
        )

    @strawberry.field(
        description="One profile of the pair, masked for your role as everywhere; a profile "
        "merged since answers as its survivor. Null once erased."
    )
    async def left(self, info: Info[Any, Any]) -> CustomerNode | None:
        return await customer_node(info, self.row.left_id)

    @strawberry.field(
        description="The other profile of the pair (as `left`: masked, merged profiles answer "
        "as their survivor, null once erased)."
    )
    async def right(self, info: Info[Any, Any]) -> CustomerNode | None:
        return await customer_node(info, self.row.right_id)

    @strawberry.field(
        description="The steward's note on the decision; null without one.",
        extensions=allow(*TEXT_READERS),
    )
    async def note(self, info: Info[Any, Any]) -> str | None:
        key = await _data_key(info, self.row.left_id)
        return service.open_note(info.context.vault, key, self.row)

    @strawberry.field(
        description="The merge this pair led to (status MERGED), or the merge whose undoing "
        "made it NOT_A_MATCH; null otherwise."
    )
    async def merge(self, info: Info[Any, Any]) -> "CustomerMerge | None":
        if self.row.merge_id is None:
            return None
        row = await info.context.loaders.get(loaders.merges_by_id).load(self.row.merge_id)
        return CustomerMerge.from_row(row) if row is not None else None

    @strawberry.field(
        description="The match run that last scored the pair; null for a pair recorded by an "
        "unmerge.",
        extensions=allow(*RUN_READERS),
    )
    async def run(self, info: Info[Any, Any]) -> "MatchRunNode | None":
        if self.row.run_id is None:
            return None
        row = await info.context.loaders.get(loaders.runs_by_id).load(self.row.run_id)
        return MatchRunNode.from_row(row) if row is not None else None


@strawberry.type(
    description="One merge of a profile into another, and its undoing. The merged profile's "
    "id keeps answering with the survivor until the merge is undone."
)
class CustomerMerge(Node):
    kind: MergeKind = strawberry.field(description="How the merge was decided.")
    survivor_id: strawberry.ID = strawberry.field(
        description="Global id of the profile that stayed (the `survivor` customer)."
    )
    merged_id: strawberry.ID = strawberry.field(
        description="Global id of the profile merged into it (the `merged` customer)."
    )
    probability: float | None = strawberry.field(
        description="Match probability of the pair, 0 to 1, for a merge found by matching "
        "(REVIEW, AUTOMATIC); null for a MANUAL merge."
    )
    merged_at: datetime = strawberry.field(description="When the profiles were merged.")
    unmerged_at: datetime | None = strawberry.field(
        description="When the merge was undone; null while it stands."
    )
    row: strawberry.Private[Merge]

    @classmethod
    def from_row(cls, row: Merge) -> "CustomerMerge":
        return cls(
            id=global_id(CUSTOMER_MERGE, row.id),
            kind=row.kind,
            survivor_id=global_id(CUSTOMER, row.survivor_id),
            merged_id=global_id(CUSTOMER, row.merged_id),
            probability=row.probability,
            merged_at=row.merged_at,
            unmerged_at=row.unmerged_at,
            row=row,
        )

    @strawberry.field(
        description="The profile that stayed, masked for your role; if it was merged into "
        "another since, that one. Null once erased."
    )
    async def survivor(self, info: Info[Any, Any]) -> CustomerNode | None:
        return await customer_node(info, self.row.survivor_id)

    @strawberry.field(
        description="The profile merged in. While the merge stands its id answers with the "
        "survivor, so this is the survivor; once undone, the restored profile. Null once "
        "erased."
    )
    async def merged(self, info: Info[Any, Any]) -> CustomerNode | None:
        return await customer_node(info, self.row.merged_id)

    @strawberry.field(
        description="The review-queue pair behind a REVIEW or AUTOMATIC merge; null for a "
        "MANUAL merge (or once the pair is forgotten)."
    )
    async def candidate(self, info: Info[Any, Any]) -> MatchCandidateNode | None:
        if self.row.candidate_id is None:
            return None
        row = await info.context.loaders.get(loaders.candidates_by_id).load(self.row.candidate_id)
        return MatchCandidateNode.from_row(row) if row is not None else None

    @strawberry.field(
        description="Why the profiles were merged, as the steward wrote it; null for an "
        "automatic merge.",
        extensions=allow(*TEXT_READERS),
    )
    async def reason(self, info: Info[Any, Any]) -> str | None:
        key = await _data_key(info, self.row.survivor_id)
        return service.open_reason(info.context.vault, key, self.row, unmerge=False)

    @strawberry.field(
        description="Why the merge was undone; null while it stands.",
        extensions=allow(*TEXT_READERS),
    )
    async def unmerge_reason(self, info: Info[Any, Any]) -> str | None:
        key = await _data_key(info, self.row.survivor_id)
        return service.open_reason(info.context.vault, key, self.row, unmerge=True)


@strawberry.type(
    name="MatchRun",
    description="The evidence of one match run: what it compared and what came of it "
    "(counts only, no values).",
)
class MatchRunNode(Node):
    status: RunStatus = strawberry.field(description="The state of the run.")
    full: bool = strawberry.field(
        description="True when every profile was compared; false for an incremental run "
        "(profiles created or changed since the previous run)."
    )
    trained: bool = strawberry.field(description="True when this run (re)trained the model.")
    model_version: int | None = strawberry.field(
        description="Version of the model it scored with; null when it failed before having one."
    )
    started_at: datetime = strawberry.field(description="When the run started.")
    finished_at: datetime | None = strawberry.field(
        description="When it ended (finished, interrupted or failed); null while RUNNING."
    )
    profiles: int = strawberry.field(description="Number of profiles loaded.")
    focus: int = strawberry.field(
        description="Number of profiles compared against their blocks (all of them in a full run)."
    )
    compared_pairs: int = strawberry.field(description="Number of pairs scored.")
    candidates: int = strawberry.field(
        description="Number of pairs at or above the review threshold."
    )
    queued: int = strawberry.field(description="Number of pairs sent to the review queue.")
    auto_merged: int = strawberry.field(description="Number of pairs merged automatically.")
    duration_seconds: float = strawberry.field(description="How long the run took, in seconds.")

    @classmethod
    def from_row(cls, row: MatchRun) -> "MatchRunNode":
        return cls(
            id=global_id(MATCH_RUN, row.id),
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


@strawberry.type(description="A page of match candidates, Relay style, with the total count.")
class MatchCandidateConnection(CountedConnection[MatchCandidateNode]):
    pass


@strawberry.type(description="A page of match runs, Relay style, with the total count.")
class MatchRunConnection(CountedConnection[MatchRunNode]):
    pass


async def _candidates(info: Info[Any, Any], ids: list[uuid.UUID]) -> Sequence[object | None]:
    rows = await info.context.loaders.get(loaders.candidates_by_id).load_many(ids)
    return [MatchCandidateNode.from_row(r) if r is not None else None for r in rows]


async def _merges(info: Info[Any, Any], ids: list[uuid.UUID]) -> Sequence[object | None]:
    rows = await info.context.loaders.get(loaders.merges_by_id).load_many(ids)
    return [CustomerMerge.from_row(r) if r is not None else None for r in rows]


async def _runs(info: Info[Any, Any], ids: list[uuid.UUID]) -> Sequence[object | None]:
    rows = await info.context.loaders.get(loaders.runs_by_id).load_many(ids)
    return [MatchRunNode.from_row(r) if r is not None else None for r in rows]


#: How node(id:) fetches this domain's objects: with the roles of each type's own query
#: (a merge is read where Customer.mergeHistory is).
NODE_KINDS: tuple[NodeKind, ...] = (
    NodeKind.of(MATCH_CANDIDATE, READERS, _candidates),
    NodeKind.of(CUSTOMER_MERGE, MERGE_READERS, _merges),
    NodeKind.of(MATCH_RUN, RUN_READERS, _runs),
)
