"""GraphQL API of retention: policies, legal holds, the sweep preview and sweep evidence."""

from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.core.errors import ValidationFailed
from cdlm.core.roles import OVERSIGHT_ROLES, STAFF_ROLES, Role
from cdlm.graphql.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.relay import NodeKind
from cdlm.graphql.scalars import parse_id
from cdlm.holds import service as legal_holds
from cdlm.holds.models import LegalHold
from cdlm.retention import policies, service, sweep
from cdlm.retention.models import Action, RetentionPolicy, Trigger

strawberry.enum(Trigger, name="RetentionTrigger", description="What a period counts from.")
strawberry.enum(Action, name="RetentionAction", description="What happens to data past its period.")


CATALOG = (Role.ADMIN, Role.PRIVACY_OFFICER)
READERS = tuple(STAFF_ROLES)


@strawberry.type(
    name="LegalHold", description="Data that must be kept whatever a request or policy says."
)
class LegalHoldNode:
    id: strawberry.ID
    customer_id: strawberry.ID | None
    category: str | None = strawberry.field(
        description="A retention category held for everyone (e.g. events.purchase)."
    )
    reason: str
    placed_at: datetime
    ends_at: datetime | None
    released_at: datetime | None

    @classmethod
    def from_row(cls, row: LegalHold) -> "LegalHoldNode":
        return cls(
            id=strawberry.ID(str(row.id)),
            customer_id=strawberry.ID(str(row.customer_id)) if row.customer_id else None,
            category=row.category,
            reason=row.reason,
            placed_at=row.placed_at,
            ends_at=row.ends_at,
            released_at=row.released_at,
        )


@strawberry.input(description="Hold one customer, or a category of everyone's data.")
class PlaceLegalHoldInput:
    reason: str
    customer_id: strawberry.ID | None = None
    category: str | None = None
    ends_at: datetime | None = None


@strawberry.input
class ReleaseLegalHoldInput:
    id: strawberry.ID


@strawberry.type
class LegalHoldSaved:
    hold: LegalHoldNode


@strawberry.type(
    name="RetentionPolicy",
    description="How long one category of data is kept, and what happens then.",
)
class RetentionPolicyNode:
    id: strawberry.ID
    category: str = strawberry.field(
        description="events, events.<type>, source_records, customers.inactive, dsr.exports, "
        "dsr.verification_codes, dsr.requests, notifications, idempotency_records, "
        "rate_limit_counters."
    )
    period_days: int
    trigger: Trigger
    action: Action
    description: str
    active: bool
    updated_at: datetime

    @classmethod
    def from_row(cls, row: RetentionPolicy) -> "RetentionPolicyNode":
        return cls(
            id=strawberry.ID(str(row.id)),
            category=row.category,
            period_days=row.period_days,
            trigger=row.trigger,
            action=row.action,
            description=row.description,
            active=row.active,
            updated_at=row.updated_at,
        )


@strawberry.input
class CreateRetentionPolicyInput:
    category: str
    period_days: int
    trigger: Trigger
    action: Action
    description: str = ""


@strawberry.input(description="Omitted fields keep their value.")
class UpdateRetentionPolicyInput:
    id: strawberry.ID
    period_days: int | None = None
    trigger: Trigger | None = None
    action: Action | None = None
    description: str | None = None
    active: bool | None = None


@strawberry.type
class RetentionPolicySaved:
    policy: RetentionPolicyNode


@strawberry.type(description="What a sweep did (or would do) under one policy.")
class SweepOutcome:
    category: str
    action: Action
    trigger: Trigger
    period_days: int
    cutoff: datetime = strawberry.field(description="Data from before this is due.")
    disposed: int
    archived: int = strawberry.field(description="Records written to the archive.")
    skipped_held: int = strawberry.field(
        description="Due, but kept by a legal hold (or, for customers, an open request)."
    )
    first_at: datetime | None = strawberry.field(description="Oldest disposed-of data.")
    last_at: datetime | None = strawberry.field(description="Newest disposed-of data.")
    digest: str = strawberry.field(description="SHA-256 chained over what was disposed of.")
    archive_objects: list[str]
    done: bool
    note: str | None = strawberry.field(description="Why it stopped early, if it did.")

    @classmethod
    def of(cls, outcome: sweep.Outcome) -> "SweepOutcome":
        return cls(
            category=outcome.category,
            action=outcome.action,
            trigger=outcome.trigger,
            period_days=outcome.period_days,
            cutoff=outcome.cutoff,
            disposed=outcome.disposed,
            archived=outcome.archived,
            skipped_held=outcome.skipped_held,
            first_at=outcome.first_at,
            last_at=outcome.last_at,
            digest=outcome.digest,
            archive_objects=outcome.archive_objects,
            done=outcome.done,
            note=outcome.note,
        )


@strawberry.type(description="A retention sweep: its moment and its evidence per policy.")
class SweepReport:
    run_id: strawberry.ID | None = strawberry.field(description="Null for a preview.")
    as_of: datetime
    dry_run: bool
    finished: bool
    outcomes: list[SweepOutcome]
    unfinished_run_id: strawberry.ID | None = strawberry.field(
        description="A preview: the unfinished run the next sweep resumes before a new one."
    )

    @classmethod
    def of(cls, report: sweep.Report) -> "SweepReport":
        unfinished = report.unfinished_run_id
        return cls(
            run_id=strawberry.ID(str(report.run_id)) if report.run_id else None,
            as_of=report.as_of,
            dry_run=report.dry_run,
            finished=report.finished,
            outcomes=[SweepOutcome.of(o) for o in report.outcomes],
            unfinished_run_id=strawberry.ID(str(unfinished)) if unfinished else None,
        )


PolicyResult = Annotated[
    RetentionPolicySaved | ValidationError | NotFoundError | ConflictError,
    strawberry.union("RetentionPolicyResult"),
]
HoldResult = Annotated[
    LegalHoldSaved | ValidationError | NotFoundError | InvalidStateError,
    strawberry.union("LegalHoldResult"),
]


@strawberry.type
class RetentionQuery:
    @strawberry.field(description="Legal holds, newest first.", extensions=allow(*OVERSIGHT_ROLES))
    async def legal_holds(self, include_ended: bool = False) -> list[LegalHoldNode]:
        return [LegalHoldNode.from_row(h) for h in await legal_holds.holds(include_ended)]

    @strawberry.field(description="Retention policies, by category.", extensions=allow(*READERS))
    async def retention_policies(self) -> list[RetentionPolicyNode]:
        return [RetentionPolicyNode.from_row(p) for p in await policies.all_policies()]

    @strawberry.field(
        description="What the next sweep would dispose of, and what holds would keep.",
        extensions=allow(*OVERSIGHT_ROLES),
    )
    async def retention_preview(self) -> SweepReport:
        return SweepReport.of(await sweep.preview())

    @strawberry.field(
        description="The latest sweeps with their evidence, newest first.",
        extensions=allow(*OVERSIGHT_ROLES),
    )
    async def retention_sweeps(self, limit: int = 20) -> list[SweepReport]:
        if not 1 <= limit <= 100:
            raise ValidationFailed("Between 1 and 100.", field="limit")
        return [SweepReport.of(r) for r in await sweep.runs(limit)]


@strawberry.type
class RetentionMutation:
    @strawberry.mutation(description="Declare a retention policy.", extensions=allow(*CATALOG))
    @errors_as_data
    async def create_retention_policy(
        self, info: Info[Any, Any], input: CreateRetentionPolicyInput
    ) -> PolicyResult:
        row = await policies.create_policy(
            await require_principal(info),
            category=input.category,
            period_days=input.period_days,
            trigger=input.trigger,
            action=input.action,
            description=input.description,
        )
        return RetentionPolicySaved(policy=RetentionPolicyNode.from_row(row))

    @strawberry.mutation(description="Change a retention policy.", extensions=allow(*CATALOG))
    @errors_as_data
    async def update_retention_policy(
        self, info: Info[Any, Any], input: UpdateRetentionPolicyInput
    ) -> PolicyResult:
        change = policies.PolicyChange(
            parse_id(input.id, "input.id"),
            period_days=input.period_days,
            trigger=input.trigger,
            action=input.action,
            description=input.description,
            active=input.active,
        )
        row = await policies.update_policy(await require_principal(info), change)
        return RetentionPolicySaved(policy=RetentionPolicyNode.from_row(row))

    @strawberry.mutation(description="Place a legal hold.", extensions=allow(*OVERSIGHT_ROLES))
    @errors_as_data
    async def place_legal_hold(
        self, info: Info[Any, Any], input: PlaceLegalHoldInput
    ) -> HoldResult:
        hold = await service.place_hold(
            await require_principal(info),
            reason=input.reason,
            customer_id=parse_id(input.customer_id, "input.customerId")
            if input.customer_id
            else None,
            category=input.category,
            ends_at=input.ends_at,
        )
        return LegalHoldSaved(hold=LegalHoldNode.from_row(hold))

    @strawberry.mutation(description="End a legal hold now.", extensions=allow(*OVERSIGHT_ROLES))
    @errors_as_data
    async def release_legal_hold(
        self, info: Info[Any, Any], input: ReleaseLegalHoldInput
    ) -> HoldResult:
        hold = await service.release_hold(
            await require_principal(info), parse_id(input.id, "input.id")
        )
        return LegalHoldSaved(hold=LegalHoldNode.from_row(hold))


#: How node(id:) fetches this domain's objects.
NODE_KINDS: tuple[NodeKind, ...] = ()
