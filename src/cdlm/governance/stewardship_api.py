"""GraphQL API of stewardship: ``assignDataOwnership`` and ``myStewardshipTasks``."""

import uuid
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.core.errors import ErrorCode, PermissionDenied, ValidationFailed
from cdlm.core.principal import PrincipalKind
from cdlm.core.roles import OVERSIGHT_ROLES
from cdlm.customers.api.reading import customer_node
from cdlm.customers.api.types import CustomerNode
from cdlm.governance import stewardship
from cdlm.governance.api import DataCategoryOwnership
from cdlm.governance.stewardship import STEWARD_ROLES, TaskKind
from cdlm.graphql.enums import describe_enum
from cdlm.graphql.errors import NotFoundError, Outcomes, ValidationError, errors_as_data
from cdlm.graphql.pagination import (
    After,
    Before,
    Connection,
    Edge,
    First,
    Last,
    PageArgs,
    PageInfo,
    SortKey,
    decode_cursor,
    encode_cursor,
)
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.relay import global_id, parse_id
from cdlm.matching.api.types import READERS as CANDIDATE_READERS
from cdlm.matching.api.types import MatchCandidateNode
from cdlm.quality.fields import profile_path

describe_enum(
    TaskKind,
    "What kind of open data-quality issue a stewardship task is.",
    {
        TaskKind.REFUSED_VALUE: "A value a source sent that validation refused and no valid "
        "value has replaced yet; routed by the category of its profile field.",
        TaskKind.LOW_QUALITY_PROFILE: "A profile whose stored quality score is below "
        "`CDLM_STEWARDSHIP_QUALITY_BELOW`; routed to the `user` category (the whole record).",
        TaskKind.MATCH_CANDIDATE: "A pair of profiles waiting in the matching review queue; "
        "routed to the `user.unique_id` category (identity).",
    },
    name="StewardshipTaskKind",
)

_ORDER = (SortKey("opened_at"), SortKey("id"))
_LIST = "stewardship_tasks"


@strawberry.type(
    description="What a refused value was (never the value itself: read it on the customer, "
    "`quality.invalidValues`, where your role may see it)."
)
class StewardshipRefusedValue:
    field: str = strawberry.field(
        description="The field's path below the customer, e.g. `profile.email`."
    )
    code: ErrorCode = strawberry.field(description="Why it was refused.")
    source_record_id: strawberry.ID | None = strawberry.field(
        description="Global id of the `SourceRecord` that sent it; null when none is known."
    )


@strawberry.type(
    description="An open data-quality issue routed to you as the steward of its data "
    "category. It carries references, not personal values."
)
class StewardshipTask:
    kind: TaskKind = strawberry.field(description="What kind of issue it is.")
    category: str = strawberry.field(
        description="The data category it was routed by (you are its steward)."
    )
    opened_at: datetime = strawberry.field(
        description="Since when it is open: when the value was refused, when the profile "
        "last changed (its score was computed then), or when matching found the pair."
    )
    quality_score: float | None = strawberry.field(
        description="The profile's stored quality score, 0 to 1 (low-quality profiles only)."
    )
    refused_value: StewardshipRefusedValue | None = strawberry.field(
        description="What was refused (refused values only)."
    )
    task: strawberry.Private[stewardship.Task]

    @strawberry.field(
        description="The customer concerned (refused values and low-quality profiles); null "
        "for a candidate pair, or when the customer is gone meanwhile."
    )
    async def customer(self, info: Info[Any, Any]) -> CustomerNode | None:
        if self.task.customer_id is None:
            return None
        return await customer_node(info, self.task.customer_id)

    @strawberry.field(
        description="The pair waiting for review (match candidates only).",
        extensions=allow(*CANDIDATE_READERS),
    )
    def match_candidate(self) -> MatchCandidateNode | None:
        found = self.task.candidate
        return MatchCandidateNode.from_row(found) if found is not None else None

    @classmethod
    def of(cls, task: stewardship.Task) -> "StewardshipTask":
        refused = (
            StewardshipRefusedValue(
                field=profile_path(task.field),
                code=ErrorCode(task.code),
                source_record_id=(
                    global_id("SourceRecord", task.source_record_id)
                    if task.source_record_id is not None
                    else None
                ),
            )
            if task.kind is TaskKind.REFUSED_VALUE and task.field and task.code
            else None
        )
        return cls(
            kind=task.kind,
            category=task.category,
            opened_at=task.opened_at,
            quality_score=task.quality_score,
            refused_value=refused,
            task=task,
        )


@strawberry.input(description="Which of your tasks to list; criteria combine with AND.")
class StewardshipTaskFilter:
    kind: TaskKind | None = strawberry.field(
        default=None, description="Only tasks of this kind; null: every kind."
    )
    category: str | None = strawberry.field(
        default=None,
        description="Only tasks of this data category (one of the data map's, e.g. "
        "`user.contact`); null: every category you steward.",
    )


def _bound(cursor: str | None, field: str) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    moment, key = decode_cursor(cursor, _ORDER, field, list_name=_LIST)
    if not isinstance(moment, datetime) or not isinstance(key, uuid.UUID):
        raise ValidationFailed(
            "The cursor is not valid for this list.", field=field, code=ErrorCode.INVALID_CURSOR
        )
    return moment, key


def _edge(task: stewardship.Task) -> Edge[StewardshipTask]:
    def cursor() -> str:
        return encode_cursor(_ORDER, [task.opened_at, task.id], list_name=_LIST)

    return Edge(node=StewardshipTask.of(task), make_cursor=cursor)


@strawberry.type(description="Your data categories' owner and steward, as assigned.")
class DataOwnershipAssigned:
    ownership: DataCategoryOwnership = strawberry.field(
        description="The category with its owner and steward now."
    )


ASSIGN_DATA_OWNERSHIP = Outcomes(
    "AssignDataOwnershipResult",
    DataOwnershipAssigned,
    {
        ValidationError: "the category is not one of the data map's (`input.category`), the "
        "steward has none of the roles steward, privacy_officer or admin "
        "(`input.stewardId`), or an id is malformed or not the id of a staff user "
        "(INVALID_ID)",
        NotFoundError: "no active staff user has the owner's or the steward's id (deactivated "
        "users cannot be assigned)",
    },
)
AssignDataOwnershipResult = Annotated[
    DataOwnershipAssigned | ValidationError | NotFoundError, ASSIGN_DATA_OWNERSHIP.marker
]


@strawberry.input(description="Who owns and who stewards a data category.")
class AssignDataOwnershipInput:
    category: str = strawberry.field(
        description="A data category of the data map, at the level owners are assigned "
        "(`DataMapEntry.ownershipCategory`, e.g. `user.contact`)."
    )
    owner_id: strawberry.ID = strawberry.field(
        description="Global id of the active staff user accountable for the category."
    )
    steward_id: strawberry.ID = strawberry.field(
        description="Global id of the active staff user who looks after its quality: must "
        "have the steward, privacy_officer or admin role."
    )


@strawberry.type
class StewardshipQuery:
    @strawberry.field(
        description="Your open data-quality tasks, oldest first: refused values, low-quality "
        "profiles and review-queue pairs of the data categories you steward. For signed-in "
        "staff users: an API key is refused (it stewards nothing).",
        extensions=allow(*STEWARD_ROLES),
    )
    async def my_stewardship_tasks(
        self,
        info: Info[Any, Any],
        filter: Annotated[
            StewardshipTaskFilter | None,
            strawberry.argument(description="Which tasks; default: all of yours."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[StewardshipTask]:
        principal = await require_principal(info)
        if principal.kind is not PrincipalKind.USER or principal.id is None:
            raise PermissionDenied(
                "Stewardship tasks are routed to signed-in staff users; an API key has none."
            )
        given = filter or StewardshipTaskFilter()
        paging = PageArgs(first, after, last, before)
        page = await stewardship.tasks(
            stewardship.TaskQuery(
                steward_id=principal.id,
                limit=paging.size(),
                after=_bound(after, "after"),
                before=_bound(before, "before"),
                backwards=paging.backwards,
                kind=given.kind,
                category=given.category,
                quality_below=info.context.settings.stewardship_quality_below,
            )
        )
        edges = [_edge(task) for task in page.tasks]
        return Connection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page,
                has_previous_page=page.has_previous_page,
                start_cursor=edges[0].cursor() if edges else None,
                end_cursor=edges[-1].cursor() if edges else None,
            ),
        )


@strawberry.type
class StewardshipMutation:
    @strawberry.mutation(
        description=ASSIGN_DATA_OWNERSHIP.describe(
            "Make a staff user the owner and another (or the same) the steward of a data "
            "category of the data map (audited). Reassigning replaces the current pair and "
            "keeps it in the category's history; assigning the same pair again changes nothing."
        ),
        extensions=allow(*OVERSIGHT_ROLES),
    )
    @errors_as_data
    async def assign_data_ownership(
        self,
        info: Info[Any, Any],
        input: Annotated[AssignDataOwnershipInput, strawberry.argument(description="Who.")],
    ) -> AssignDataOwnershipResult:
        given = stewardship.OwnershipInput(
            category=input.category,
            owner_id=parse_id(input.owner_id, "input.ownerId", "StaffUser"),
            steward_id=parse_id(input.steward_id, "input.stewardId", "StaffUser"),
        )
        row = await stewardship.assign(await require_principal(info), given)
        owned = stewardship.Ownership(row.category, row, owner_active=True)
        return DataOwnershipAssigned(ownership=DataCategoryOwnership.of(owned))
