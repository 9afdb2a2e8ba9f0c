"""GraphQL API of retention: policies, legal holds, the sweep preview and sweep evidence.

A retention category is the enum ``RetentionCategory`` plus, for events, an optional
``eventType``: the stored ``events.purchase`` is ``{category: EVENTS, eventType: "purchase"}``,
so clients switch over a closed set and only the event type (open, as events are) is text.
"""

import uuid
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.core.errors import ErrorCode, ValidationFailed
from cdlm.core.roles import OVERSIGHT_ROLES, STAFF_ROLES, Role
from cdlm.customers.api.reading import customer_node
from cdlm.customers.api.types import CustomerNode
from cdlm.graphql.enums import describe_enum
from cdlm.graphql.errors import (
    ConflictError,
    InvalidStateError,
    NotFoundError,
    Outcomes,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.pagination import (
    After,
    Before,
    CountedConnection,
    First,
    Last,
    SortKey,
    paginate,
)
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.relay import Node, NodeKind, global_id, parse_id, parse_optional_id, rows_fetcher
from cdlm.graphql.updates import Changes
from cdlm.holds import service as legal_holds
from cdlm.holds.models import LegalHold
from cdlm.retention import loaders, policies, service, sweep
from cdlm.retention.categories import (
    SPECS,
    Category,
    category_key,
    event_type_problem,
    split_key,
)
from cdlm.retention.models import Action, RetentionPolicy, SweepRun, Trigger

describe_enum(
    Trigger,
    "What a retention period is counted from.",
    {
        Trigger.SINCE_COLLECTION: "From when the data was collected (events: when they occurred).",
        Trigger.SINCE_LAST_ACTIVITY: "From the customer's last event or profile update.",
        Trigger.SINCE_REQUEST_COMPLETION: "From when the data subject request was closed.",
    },
    name="RetentionTrigger",
)
describe_enum(
    Action,
    "What happens to data past its retention period.",
    {
        Action.DELETE: "The rows are deleted.",
        Action.ANONYMIZE: "Personal details are removed and the rest kept for statistics.",
        Action.ARCHIVE: "Written to the archive (compressed, sealed per customer), then deleted.",
        Action.CRYPTO_SHRED: "The customer's data key is destroyed: every copy, archives "
        "included, becomes unreadable.",
    },
    name="RetentionAction",
)


def _category_text(category: Category) -> str:
    spec = SPECS[category.value]
    triggers = ", ".join(sorted(t.name for t in spec.triggers))
    actions = ", ".join(sorted(a.name for a in spec.actions))
    return f"{spec.description} Counted {triggers}; actions {actions}."


describe_enum(
    Category,
    "A category of data that retention governs. EVENTS can be narrowed to one event type "
    "with `eventType`.",
    {
        category: _category_text(category)
        + (
            " A policy with an eventType governs that type alone; the one without covers "
            "every other type."
            if category is Category.EVENTS
            else ""
        )
        for category in Category
    },
    name="RetentionCategory",
)

#: Who declares retention policies.
CATALOG = (Role.ADMIN, Role.PRIVACY_OFFICER)
#: Who reads retention policies.
READERS = tuple(STAFF_ROLES)
_BY_CATEGORY = [SortKey("category")]
_NEWEST_FIRST = [SortKey("placed_at", descending=True), SortKey("id", descending=True)]
_LATEST_RUNS = [SortKey("started_at", descending=True), SortKey("id", descending=True)]
_EVENT_TYPE = (
    "Only with category EVENTS: one event type (e.g. `purchase`: 1 to 57 lower-case letters, "
    "digits, `_`, `.` or `-`, starting with a letter). Null or omitted: the whole category."
)


def _check_event_type(category: Category | None, event_type: str | None) -> None:
    """Refuses an ``input.eventType`` that does not fit the input's category."""
    problem = event_type_problem(category, event_type)
    if problem is not None:
        raise ValidationFailed(problem, field="input.eventType", code=ErrorCode.INVALID_FORMAT)


# --------------------------------------------------------------------------- types


@strawberry.type(
    name="RetentionPolicy",
    description="How long one category of data is kept, and what happens to it then.",
)
class RetentionPolicyNode(Node):
    category: Category = strawberry.field(description="The data it governs.")
    event_type: str | None = strawberry.field(
        description="The one event type it governs (category EVENTS); null: the whole category."
    )
    period_days: int = strawberry.field(description="Days the data is kept (1 to 36,500).")
    trigger: Trigger = strawberry.field(description="What the period is counted from.")
    action: Action = strawberry.field(description="What happens to the data past its period.")
    description: str = strawberry.field(description="Why, in words (may be empty).")
    active: bool = strawberry.field(description="False: the sweep ignores the policy.")
    created_at: datetime = strawberry.field(description="When it was declared.")
    updated_at: datetime = strawberry.field(
        description="When it last changed (the next sweep applies the change)."
    )

    @classmethod
    def from_row(cls, row: RetentionPolicy) -> "RetentionPolicyNode":
        category, event_type = split_key(row.category)
        return cls(
            id=global_id("RetentionPolicy", row.id),
            category=category,
            event_type=event_type,
            period_days=row.period_days,
            trigger=row.trigger,
            action=row.action,
            description=row.description,
            active=row.active,
            created_at=row.created_at,
            updated_at=row.updated_at,
        )


@strawberry.type(
    name="LegalHold",
    description="Data that must be kept whatever a request or a retention policy says "
    "(litigation, an investigation, a legal duty): everything about one customer, or one "
    "category of everyone's data.",
)
class LegalHoldNode(Node):
    customer_id: strawberry.ID | None = strawberry.field(
        description="Global id of the customer held; null for a hold on a category."
    )
    category: Category | None = strawberry.field(
        description="The category held for everyone; null for a hold on a customer."
    )
    event_type: str | None = strawberry.field(
        description="The one event type held (category EVENTS); null: the whole category, or "
        "a hold on a customer."
    )
    reason: str = strawberry.field(description="Why the data is held (audited; no personal data).")
    placed_at: datetime = strawberry.field(description="When the hold was placed.")
    ends_at: datetime | None = strawberry.field(
        description="When the hold ends by itself; null: when released."
    )
    released_at: datetime | None = strawberry.field(
        description="When it was released; null while not released."
    )
    in_force: bool = strawberry.field(
        description="True while the hold applies: not released and not past its end."
    )
    row: strawberry.Private[LegalHold]

    @classmethod
    def from_row(cls, row: LegalHold) -> "LegalHoldNode":
        category, event_type = split_key(row.category) if row.category else (None, None)
        return cls(
            id=global_id("LegalHold", row.id),
            customer_id=global_id("Customer", row.customer_id) if row.customer_id else None,
            category=category,
            event_type=event_type,
            reason=row.reason,
            placed_at=row.placed_at,
            ends_at=row.ends_at,
            released_at=row.released_at,
            in_force=legal_holds.in_force(row),
            row=row,
        )

    @strawberry.field(
        description="The customer held (the profile it went to when merged); null for a hold "
        "on a category, or when the customer was erased."
    )
    async def customer(self, info: Info[Any, Any]) -> CustomerNode | None:
        if self.row.customer_id is None:
            return None
        return await customer_node(info, self.row.customer_id)


@strawberry.type(
    description="What a sweep did (or, in a preview, would do) under one policy: the evidence "
    "kept of it."
)
class RetentionSweepOutcome:
    category: Category = strawberry.field(description="The category swept.")
    event_type: str | None = strawberry.field(
        description="The one event type swept (category EVENTS); null: the whole category."
    )
    policy_id: strawberry.ID | None = strawberry.field(
        description="Global id of the policy applied; null only for evidence older than its "
        "recording."
    )
    action: Action = strawberry.field(description="The policy's action, as applied.")
    trigger: Trigger = strawberry.field(description="The policy's trigger, as applied.")
    period_days: int = strawberry.field(description="The policy's period, as applied.")
    cutoff: datetime = strawberry.field(description="Data from before this moment was due.")
    disposed: int = strawberry.field(description="Records disposed of (or due, in a preview).")
    archived: int = strawberry.field(description="Records written to the archive.")
    skipped_held: int = strawberry.field(
        description="Due, but kept by a legal hold (or, for customers, an open request)."
    )
    first_at: datetime | None = strawberry.field(
        description="Time of the oldest record disposed of; null when none was."
    )
    last_at: datetime | None = strawberry.field(
        description="Time of the newest record disposed of; null when none was."
    )
    digest: str = strawberry.field(
        description="SHA-256 (hex) chained over the ids of what was disposed of, in order."
    )
    archive_objects: list[str] = strawberry.field(
        description="Keys of the archive objects written, in order."
    )
    done: bool = strawberry.field(
        description="True when nothing more was due under the policy (or it stopped: see note)."
    )
    note: str | None = strawberry.field(
        description="Why the policy's part stopped early; null when it did not."
    )
    policy_key: strawberry.Private[uuid.UUID | None]

    @classmethod
    def of(cls, outcome: sweep.Outcome) -> "RetentionSweepOutcome":
        category, event_type = split_key(outcome.category)
        return cls(
            category=category,
            event_type=event_type,
            policy_id=(
                global_id("RetentionPolicy", outcome.policy_id) if outcome.policy_id else None
            ),
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
            archive_objects=list(outcome.archive_objects),
            done=outcome.done,
            note=outcome.note,
            policy_key=outcome.policy_id,
        )

    @strawberry.field(
        description="The policy applied, as it is now (it may have changed since the sweep); "
        "null when it no longer exists."
    )
    async def policy(self, info: Info[Any, Any]) -> RetentionPolicyNode | None:
        if self.policy_key is None:
            return None
        row = await info.context.loaders.get(loaders.policies_by_id).load(self.policy_key)
        return RetentionPolicyNode.from_row(row) if row is not None else None


@strawberry.type(
    name="RetentionSweep",
    description="One run of the retention sweep: its fixed moment and its evidence per policy. "
    "A run stopped by its time budget is resumed by the next sweep.",
)
class RetentionSweepNode(Node):
    as_of: datetime = strawberry.field(
        description="The run's moment: every cutoff is counted back from it."
    )
    started_at: datetime = strawberry.field(description="When the run began.")
    finished_at: datetime | None = strawberry.field(
        description="When the run finished; null while it is unfinished."
    )
    finished: bool = strawberry.field(description="True when every policy's part is done.")
    row: strawberry.Private[SweepRun]

    @classmethod
    def from_row(cls, row: SweepRun) -> "RetentionSweepNode":
        return cls(
            id=global_id("RetentionSweep", row.id),
            as_of=row.as_of,
            started_at=row.started_at,
            finished_at=row.finished_at,
            finished=row.finished_at is not None,
            row=row,
        )

    @strawberry.field(description="Evidence per policy applied, by category.")
    async def outcomes(self, info: Info[Any, Any]) -> list[RetentionSweepOutcome]:
        found = await info.context.loaders.get(loaders.outcomes_by_run).load(self.row.id)
        return [RetentionSweepOutcome.of(o) for o in found]


@strawberry.type(
    description="What a sweep started now would dispose of, per active policy, and what legal "
    "holds would keep; nothing is changed."
)
class RetentionSweepPreview:
    as_of: datetime = strawberry.field(description="The moment the forecast is made for (now).")
    outcomes: list[RetentionSweepOutcome] = strawberry.field(
        description="Forecast per active policy, by category."
    )
    unfinished_sweep_id: strawberry.ID | None = strawberry.field(
        description="Global id of an unfinished run, which the next sweep resumes before a new "
        "one starts; null when there is none."
    )
    unfinished_run: strawberry.Private[uuid.UUID | None]

    @strawberry.field(description="The unfinished run the next sweep resumes; null: none.")
    async def unfinished_sweep(self) -> RetentionSweepNode | None:
        if self.unfinished_run is None:
            return None
        found = await sweep.runs_by_ids([self.unfinished_run])
        row = found.get(self.unfinished_run)
        return RetentionSweepNode.from_row(row) if row is not None else None


@strawberry.type(description="A page of retention policies, by category.")
class RetentionPolicyConnection(CountedConnection[RetentionPolicyNode]):
    pass


@strawberry.type(description="A page of legal holds, newest first.")
class LegalHoldConnection(CountedConnection[LegalHoldNode]):
    pass


@strawberry.type(description="A page of retention sweep runs, latest first.")
class RetentionSweepConnection(CountedConnection[RetentionSweepNode]):
    pass


@strawberry.input(description="Which retention policies to list; every criterion given must hold.")
class RetentionPolicyFilter:
    category: Category | None = strawberry.field(
        default=None,
        description="Only policies on this category (EVENTS: the general event policy and "
        "those of single event types).",
    )
    active: bool | None = strawberry.field(
        default=None, description="Only active (true) or inactive (false) policies."
    )


@strawberry.input(description="Which legal holds to list; every criterion given must hold.")
class LegalHoldFilter:
    include_ended: bool = strawberry.field(
        default=False, description="Also holds released or past their end (default: in force)."
    )
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only holds placed on this customer (global id)."
    )


@strawberry.input(description="Which sweep runs to list.")
class RetentionSweepFilter:
    finished: bool | None = strawberry.field(
        default=None, description="Only finished (true) or unfinished (false) runs."
    )


# --------------------------------------------------------------------------- inputs


@strawberry.input(description="A retention policy: one per category (or event type).")
class CreateRetentionPolicyInput:
    category: Category = strawberry.field(description="The data it governs.")
    event_type: str | None = strawberry.field(default=None, description=_EVENT_TYPE)
    period_days: int = strawberry.field(description="Days the data is kept, 1 to 36,500.")
    trigger: Trigger = strawberry.field(
        description="What the period counts from (each category allows some: see "
        "RetentionCategory)."
    )
    action: Action = strawberry.field(
        description="What happens past the period (each category allows some: see "
        "RetentionCategory)."
    )
    description: str = strawberry.field(
        default="", description="Why, in words (at most 500 characters)."
    )


@strawberry.input(
    description="Changes to a retention policy: a field left out keeps its value; null empties "
    "the description and is refused for the other fields. The next sweep applies the change."
)
class UpdateRetentionPolicyInput:
    id: strawberry.ID = strawberry.field(description="Global id of the policy.")
    period_days: int | None = strawberry.field(
        default=strawberry.UNSET, description="Days the data is kept, 1 to 36,500."
    )
    trigger: Trigger | None = strawberry.field(
        default=strawberry.UNSET, description="What the period counts from."
    )
    action: Action | None = strawberry.field(
        default=strawberry.UNSET, description="What happens past the period."
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="Why, in words (at most 500 characters); null empties it.",
    )
    active: bool | None = strawberry.field(
        default=strawberry.UNSET, description="False: the sweep ignores the policy."
    )


@strawberry.input(
    description="A legal hold: on one customer (customerId) or on a category of everyone's "
    "data (category, optionally eventType); exactly one of the two."
)
class PlaceLegalHoldInput:
    reason: str = strawberry.field(
        description="Why the data is held, 1 to 500 characters (e.g. a case number); no "
        "personal data."
    )
    customer_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Global id of the customer whose data is all held (a merged profile's "
        "hold goes to the profile it was merged into).",
    )
    category: Category | None = strawberry.field(
        default=None, description="The category held for everyone."
    )
    event_type: str | None = strawberry.field(default=None, description=_EVENT_TYPE)
    ends_at: datetime | None = strawberry.field(
        default=None,
        description="When the hold ends by itself, in the future, with a time zone; null or "
        "omitted: when released.",
    )


@strawberry.input(description="The hold to end now.")
class ReleaseLegalHoldInput:
    id: strawberry.ID = strawberry.field(description="Global id of the legal hold.")


# --------------------------------------------------------------------------- results


@strawberry.type(description="The retention policy as saved.")
class RetentionPolicySaved:
    retention_policy: RetentionPolicyNode = strawberry.field(
        description="The policy, with its change applied."
    )


@strawberry.type(description="The legal hold as saved.")
class LegalHoldSaved:
    legal_hold: LegalHoldNode = strawberry.field(description="The hold, as placed or released.")


CREATE_RETENTION_POLICY = Outcomes(
    "CreateRetentionPolicyResult",
    RetentionPolicySaved,
    {
        ValidationError: "the event type is malformed or given with another category than "
        "EVENTS, the period is out of range, the category does not allow the trigger or the "
        "action, or the description is too long",
        ConflictError: "the category (or event type) already has a policy",
    },
)
CreateRetentionPolicyResult = Annotated[
    RetentionPolicySaved | ValidationError | ConflictError, CREATE_RETENTION_POLICY.marker
]
UPDATE_RETENTION_POLICY = Outcomes(
    "UpdateRetentionPolicyResult",
    RetentionPolicySaved,
    {
        ValidationError: "the id is not a retention policy's, a field other than the "
        "description is null, the period is out of range, the category does not allow the "
        "trigger or the action, or the description is too long",
        NotFoundError: "no retention policy has this id",
    },
)
UpdateRetentionPolicyResult = Annotated[
    RetentionPolicySaved | ValidationError | NotFoundError, UPDATE_RETENTION_POLICY.marker
]
PLACE_LEGAL_HOLD = Outcomes(
    "PlaceLegalHoldResult",
    LegalHoldSaved,
    {
        ValidationError: "neither or both of a customer and a category are given, the customer "
        "id is not a customer's, the event type is malformed or given without category "
        "EVENTS, the reason is empty or too long, or the end is not in the future",
        NotFoundError: "no customer has this id (or it was erased)",
    },
)
PlaceLegalHoldResult = Annotated[
    LegalHoldSaved | ValidationError | NotFoundError, PLACE_LEGAL_HOLD.marker
]
RELEASE_LEGAL_HOLD = Outcomes(
    "ReleaseLegalHoldResult",
    LegalHoldSaved,
    {
        ValidationError: "the id is not a legal hold's",
        NotFoundError: "no legal hold has this id",
        InvalidStateError: "the hold has already ended (released, or past its end)",
    },
)
ReleaseLegalHoldResult = Annotated[
    LegalHoldSaved | ValidationError | NotFoundError | InvalidStateError,
    RELEASE_LEGAL_HOLD.marker,
]


def _policy_change(input: UpdateRetentionPolicyInput) -> policies.PolicyChange:
    """The service's change by the one partial-update rule (:mod:`cdlm.graphql.updates`): null
    empties the description and is refused elsewhere."""
    given = Changes()
    change = policies.PolicyChange(
        parse_id(input.id, "input.id", "RetentionPolicy"),
        period_days=given.kept(input.period_days, "input.periodDays"),
        trigger=given.kept(input.trigger, "input.trigger"),
        action=given.kept(input.action, "input.action"),
        description=given.clearable(input.description, ""),
        active=given.kept(input.active, "input.active"),
    )
    given.check()
    return change


# --------------------------------------------------------------------------- roots


@strawberry.type
class RetentionQuery:
    @strawberry.field(
        description="Legal holds, newest first (those in force unless the filter says).",
        extensions=allow(*OVERSIGHT_ROLES),
    )
    async def legal_holds(
        self,
        filter: Annotated[
            LegalHoldFilter | None,
            strawberry.argument(description="Which holds (default: those in force)."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> LegalHoldConnection:
        given = filter or LegalHoldFilter()
        criteria = legal_holds.HoldFilter(
            include_ended=given.include_ended,
            customer_id=parse_optional_id(given.customer_id, "filter.customerId", "Customer"),
        )
        page = await paginate(
            legal_holds.holds_query(criteria),
            order=_NEWEST_FIRST,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        return page.to_connection(LegalHoldNode.from_row, LegalHoldConnection)  # type: ignore[return-value]

    @strawberry.field(description="Retention policies, by category.", extensions=allow(*READERS))
    async def retention_policies(
        self,
        filter: Annotated[
            RetentionPolicyFilter | None,
            strawberry.argument(description="Which policies (default: all)."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> RetentionPolicyConnection:
        given = filter or RetentionPolicyFilter()
        criteria = policies.PolicyFilter(
            category=given.category.value if given.category is not None else None,
            active=given.active,
        )
        page = await paginate(
            policies.policies_query(criteria),
            order=_BY_CATEGORY,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        return page.to_connection(RetentionPolicyNode.from_row, RetentionPolicyConnection)  # type: ignore[return-value]

    @strawberry.field(
        description="What a sweep started now would dispose of, per active policy, and what "
        "holds would keep; changes nothing.",
        extensions=allow(*OVERSIGHT_ROLES),
    )
    async def retention_preview(self) -> RetentionSweepPreview:
        report = await sweep.preview()
        unfinished = report.unfinished_run_id
        return RetentionSweepPreview(
            as_of=report.as_of,
            outcomes=[RetentionSweepOutcome.of(o) for o in report.outcomes],
            unfinished_sweep_id=global_id("RetentionSweep", unfinished) if unfinished else None,
            unfinished_run=unfinished,
        )

    @strawberry.field(
        description="Retention sweep runs with their evidence, latest first.",
        extensions=allow(*OVERSIGHT_ROLES),
    )
    async def retention_sweeps(
        self,
        filter: Annotated[
            RetentionSweepFilter | None,
            strawberry.argument(description="Which runs (default: all)."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> RetentionSweepConnection:
        given = filter or RetentionSweepFilter()
        page = await paginate(
            sweep.runs_query(given.finished),
            order=_LATEST_RUNS,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        return page.to_connection(RetentionSweepNode.from_row, RetentionSweepConnection)  # type: ignore[return-value]


@strawberry.type
class RetentionMutation:
    @strawberry.mutation(
        description=CREATE_RETENTION_POLICY.describe(
            "Declare how long a category of data (or one event type) is kept."
        ),
        extensions=allow(*CATALOG),
    )
    @errors_as_data
    async def create_retention_policy(
        self,
        info: Info[Any, Any],
        input: Annotated[
            CreateRetentionPolicyInput, strawberry.argument(description="The policy.")
        ],
    ) -> CreateRetentionPolicyResult:
        _check_event_type(input.category, input.event_type)
        row = await policies.create_policy(
            await require_principal(info),
            category=category_key(input.category, input.event_type),
            period_days=input.period_days,
            trigger=input.trigger,
            action=input.action,
            description=input.description,
        )
        return RetentionPolicySaved(retention_policy=RetentionPolicyNode.from_row(row))

    @strawberry.mutation(
        description=UPDATE_RETENTION_POLICY.describe(
            "Change a retention policy: omitted fields keep their value (the category cannot "
            "change)."
        ),
        extensions=allow(*CATALOG),
    )
    @errors_as_data
    async def update_retention_policy(
        self,
        info: Info[Any, Any],
        input: Annotated[
            UpdateRetentionPolicyInput, strawberry.argument(description="The changes.")
        ],
    ) -> UpdateRetentionPolicyResult:
        change = _policy_change(input)
        row = await policies.update_policy(await require_principal(info), change)
        return RetentionPolicySaved(retention_policy=RetentionPolicyNode.from_row(row))

    @strawberry.mutation(
        description=PLACE_LEGAL_HOLD.describe(
            "Place a legal hold: erasure waits or keeps the held rows, and the sweep skips them."
        ),
        extensions=allow(*OVERSIGHT_ROLES),
    )
    @errors_as_data
    async def place_legal_hold(
        self,
        info: Info[Any, Any],
        input: Annotated[PlaceLegalHoldInput, strawberry.argument(description="The hold.")],
    ) -> PlaceLegalHoldResult:
        customer_id = parse_optional_id(input.customer_id, "input.customerId", "Customer")
        _check_event_type(input.category, input.event_type)
        category = input.category
        hold = await service.place_hold(
            await require_principal(info),
            reason=input.reason,
            customer_id=customer_id,
            category=category_key(category, input.event_type) if category is not None else None,
            ends_at=input.ends_at,
        )
        return LegalHoldSaved(legal_hold=LegalHoldNode.from_row(hold))

    @strawberry.mutation(
        description=RELEASE_LEGAL_HOLD.describe("End a legal hold now."),
        extensions=allow(*OVERSIGHT_ROLES),
    )
    @errors_as_data
    async def release_legal_hold(
        self,
        info: Info[Any, Any],
        input: Annotated[ReleaseLegalHoldInput, strawberry.argument(description="The hold.")],
    ) -> ReleaseLegalHoldResult:
        hold = await service.release_hold(
            await require_principal(info), parse_id(input.id, "input.id", "LegalHold")
        )
        return LegalHoldSaved(legal_hold=LegalHoldNode.from_row(hold))


#: How node(id:) fetches this domain's objects.
NODE_KINDS: tuple[NodeKind, ...] = (
    NodeKind.of(
        "RetentionPolicy",
        READERS,
        rows_fetcher(policies.policies_by_ids, RetentionPolicyNode.from_row),
    ),
    NodeKind.of(
        "LegalHold", OVERSIGHT_ROLES, rows_fetcher(legal_holds.holds_by_ids, LegalHoldNode.from_row)
    ),
    NodeKind.of(
        "RetentionSweep",
        OVERSIGHT_ROLES,
        rows_fetcher(sweep.runs_by_ids, RetentionSweepNode.from_row),
    ),
)
