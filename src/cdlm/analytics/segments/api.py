"""GraphQL API of segments: the definition inputs, ``Segment``, its size and members, the
``segments`` list, ``segmentPreview`` and the create/update mutations.

GraphQL has no input unions, so a condition is ``SegmentConditionInput`` with one optional
field per kind of condition: exactly one must be set (else a ValidationError on its path).
"""

import enum
import functools
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Optional

import strawberry
from strawberry.types.base import get_object_definition
from strawberry.types.info import Info
from strawberry.utils.str_converters import to_camel_case

from cdlm.analytics.segments import service
from cdlm.analytics.segments.models import Segment
from cdlm.core.errors import ErrorCode, ValidationFailed
from cdlm.core.roles import Role
from cdlm.customers.api.reading import customer_nodes
from cdlm.customers.api.types import CustomerNode
from cdlm.graphql.errors import (
    ConflictError,
    NotFoundError,
    Outcomes,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.pagination import (
    After,
    Before,
    Connection,
    CountedConnection,
    Edge,
    First,
    Last,
    PageArgs,
    PageInfo,
    SortKey,
    decode_cursor,
    encode_cursor,
    paginate,
)
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.relay import Node, NodeKind, global_id, parse_id, rows_fetcher
from cdlm.graphql.updates import Changes
from cdlm.graphql.vocabulary import LifecycleStage

#: Who reads segments, their size and members, and previews definitions.
READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST)
#: Who creates and changes segments.
EDITORS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.ANALYST)

_ATTRIBUTE = (
    "Path of the analysis attribute as below `Customer.analytics`: "
    "text ones (`attributes.country`, `attributes.region`, `attributes.ageBand`, "
    "`attributes.acquisitionSource`, `attributes.phoneCountry`, `attributes.phoneLineType`, "
    "`attributes.emailDomainKind`) in attribute conditions, numeric ones "
    "(`attributes.sentimentAverage`, `rfm.r`, `rfm.f`, `rfm.m`, `expectedPurchases90d`, "
    "`expectedPurchases365d`, `pAlive`, `expectedValue365d`, `churnRisk`) in score conditions."
)
_TYPE = "Event type code (e.g. `purchase`): one events have been stored with, or a purchase type."
_DAYS = "Counted back from now, 1 to 3,650 days."


# --------------------------------------------------------------------------- inputs


@strawberry.input(description="A text analysis attribute equals a value or is one of several.")
class SegmentAttributeConditionInput:
    attribute: str = strawberry.field(description=_ATTRIBUTE)
    equals: str | None = strawberry.field(
        default=None, description="The value (e.g. `DE`); give this or `in`."
    )
    in_: list[str] | None = strawberry.field(
        default=None, name="in", description="Any of these values; give this or `equals`."
    )


@strawberry.input(
    description="A numeric analysis attribute (a score) equals a value, is one of several, or "
    "lies in a range (bounds included): give exactly one of `equals`, `in` or a range."
)
class SegmentScoreConditionInput:
    attribute: str = strawberry.field(description=_ATTRIBUTE)
    equals: float | None = strawberry.field(default=None, description="The value.")
    in_: list[float] | None = strawberry.field(
        default=None, name="in", description="Any of these values."
    )
    at_least: float | None = strawberry.field(default=None, description="Lower bound, included.")
    at_most: float | None = strawberry.field(default=None, description="Upper bound, included.")


@strawberry.input(description="The customer's lifecycle stage is one of several.")
class SegmentLifecycleStageConditionInput:
    in_: list[LifecycleStage] = strawberry.field(name="in", description="The stages.")


@strawberry.input(
    description="The profile's quality score (0 to 1) lies in a range: give at least a bound."
)
class SegmentQualityScoreConditionInput:
    at_least: float | None = strawberry.field(default=None, description="Lower bound, included.")
    at_most: float | None = strawberry.field(default=None, description="Upper bound, included.")


@strawberry.input(description="The customer did (or did not) do an event of a type recently.")
class SegmentEventConditionInput:
    type: str = strawberry.field(description=_TYPE)
    within_days: int = strawberry.field(description=_DAYS)
    did: bool = strawberry.field(
        default=True, description="True: did at least once; false: did not at all."
    )


@strawberry.input(
    description="The number of events of a type within the last days is in a range: give at "
    "least a bound (at most k includes customers with none)."
)
class SegmentEventCountConditionInput:
    type: str = strawberry.field(description=_TYPE)
    within_days: int = strawberry.field(description=_DAYS)
    at_least: int | None = strawberry.field(default=None, description="At least this many.")
    at_most: int | None = strawberry.field(default=None, description="At most this many.")


@strawberry.input(
    description="The total amount of events of a type in one currency within the last days is "
    "in a range: give at least a bound. Amounts in other currencies are not counted (nor "
    "converted); no event totals 0."
)
class SegmentEventAmountConditionInput:
    type: str = strawberry.field(description=_TYPE)
    within_days: int = strawberry.field(description=_DAYS)
    currency: str = strawberry.field(description="ISO 4217 code of the amounts summed (EUR).")
    at_least: Decimal | None = strawberry.field(default=None, description="Total at least.")
    at_most: Decimal | None = strawberry.field(default=None, description="Total at most.")


@strawberry.input(
    description="The customer may be processed for a purpose now (the consent check every use "
    "of data passes: decisions, the purpose's mechanism, restriction). Allowed only as the "
    "whole definition or directly in its top-level `all` group."
)
class SegmentConsentConditionInput:
    purpose: str = strawberry.field(description="Code of a declared purpose.")


@strawberry.input(
    description="One condition of a segment: set exactly one field (GraphQL has no input "
    "unions). Groups combine conditions; leaves test what is kept in clear."
)
class SegmentConditionInput:
    all: list["SegmentConditionInput"] | None = strawberry.field(
        default=None, description="Every condition holds (at least one condition)."
    )
    any_: list["SegmentConditionInput"] | None = strawberry.field(
        default=None, name="any", description="At least one condition holds."
    )
    not_: Optional["SegmentConditionInput"] = strawberry.field(
        default=None, name="not", description="The condition does not hold."
    )
    attribute: SegmentAttributeConditionInput | None = strawberry.field(
        default=None, description="A text analysis attribute."
    )
    score: SegmentScoreConditionInput | None = strawberry.field(
        default=None, description="A numeric analysis attribute (score)."
    )
    lifecycle_stage: SegmentLifecycleStageConditionInput | None = strawberry.field(
        default=None, description="The lifecycle stage."
    )
    quality_score: SegmentQualityScoreConditionInput | None = strawberry.field(
        default=None, description="The profile's quality score."
    )
    event: SegmentEventConditionInput | None = strawberry.field(
        default=None, description="Did or did not do an event recently."
    )
    event_count: SegmentEventCountConditionInput | None = strawberry.field(
        default=None, description="How many events recently."
    )
    event_amount: SegmentEventAmountConditionInput | None = strawberry.field(
        default=None, description="Total amount of events recently."
    )
    consent: SegmentConsentConditionInput | None = strawberry.field(
        default=None, description="May be processed for a purpose."
    )


def to_plain(value: Any) -> Any:
    """An input object as the definition's JSON form: API (camelCase) names, only the fields
    given, enums as values, decimals as text."""
    if value is None or value is strawberry.UNSET:
        return None
    if isinstance(value, list):
        return [to_plain(item) for item in value]
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, Decimal):
        return str(value)
    definition = get_object_definition(value)
    if definition is None:
        return value
    plain: dict[str, Any] = {}
    for field in definition.fields:
        item = getattr(value, field.python_name)
        if item is None or item is strawberry.UNSET:
            continue
        plain[field.graphql_name or to_camel_case(field.python_name)] = to_plain(item)
    return plain


@strawberry.input(description="A new segment.")
class CreateSegmentInput:
    name: str = strawberry.field(description="Unique name, 1 to 200 characters.")
    description: str = strawberry.field(
        default="", description="What the segment is for (at most 2,000 characters)."
    )
    definition: SegmentConditionInput = strawberry.field(description="Who is a member.")


@strawberry.input(
    description="Changes to a segment: a field left out keeps its value; null empties the "
    "description and is refused for the name and the definition."
)
class UpdateSegmentInput:
    id: strawberry.ID = strawberry.field(description="Global id of the segment.")
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="Unique name, 1 to 200 characters."
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="What it is for; null empties it."
    )
    definition: SegmentConditionInput | None = strawberry.field(
        default=strawberry.UNSET, description="Who is a member."
    )


@strawberry.input(description="Which segments to list; every criterion given must hold.")
class SegmentFilter:
    name_contains: str | None = strawberry.field(
        default=None, description="Only segments whose name contains this (any case)."
    )


# --------------------------------------------------------------------------- types


@strawberry.type(description="A text analysis attribute condition.")
class SegmentAttributeCondition:
    attribute: str = strawberry.field(description="Path below `Customer.analytics`.")
    equals: str | None = strawberry.field(description="The value; null when `in` is used.")
    in_: list[str] | None = strawberry.field(
        name="in", description="Any of these values; null when `equals` is used."
    )


@strawberry.type(description="A numeric analysis attribute (score) condition.")
class SegmentScoreCondition:
    attribute: str = strawberry.field(description="Path below `Customer.analytics`.")
    equals: float | None = strawberry.field(description="The value, when one.")
    in_: list[float] | None = strawberry.field(name="in", description="The values, when several.")
    at_least: float | None = strawberry.field(description="Lower bound (included), when a range.")
    at_most: float | None = strawberry.field(description="Upper bound (included), when a range.")


@strawberry.type(description="A lifecycle stage condition.")
class SegmentLifecycleStageCondition:
    in_: list[LifecycleStage] = strawberry.field(name="in", description="The stages.")


@strawberry.type(description="A quality score condition.")
class SegmentQualityScoreCondition:
    at_least: float | None = strawberry.field(description="Lower bound (included); null: none.")
    at_most: float | None = strawberry.field(description="Upper bound (included); null: none.")


@strawberry.type(description="Did (or did not) do an event of a type recently.")
class SegmentEventCondition:
    type: str = strawberry.field(description="The event type.")
    within_days: int = strawberry.field(description="Days counted back from now.")
    did: bool = strawberry.field(description="True: did; false: did not.")


@strawberry.type(description="How many events of a type recently.")
class SegmentEventCountCondition:
    type: str = strawberry.field(description="The event type.")
    within_days: int = strawberry.field(description="Days counted back from now.")
    at_least: int | None = strawberry.field(description="At least this many; null: no bound.")
    at_most: int | None = strawberry.field(description="At most this many; null: no bound.")


@strawberry.type(description="Total amount of events of a type in one currency recently.")
class SegmentEventAmountCondition:
    type: str = strawberry.field(description="The event type.")
    within_days: int = strawberry.field(description="Days counted back from now.")
    currency: str = strawberry.field(description="ISO 4217 code of the amounts summed.")
    at_least: Decimal | None = strawberry.field(description="Total at least; null: no bound.")
    at_most: Decimal | None = strawberry.field(description="Total at most; null: no bound.")


@strawberry.type(description="May be processed for a purpose (applied after the rest).")
class SegmentConsentCondition:
    purpose: str = strawberry.field(description="Code of the purpose.")


def _cut(raw: Mapping[str, Any], *names: str) -> dict[str, Any]:
    return {to_python: raw.get(name) for name, to_python in zip(names, _python(names), strict=True)}


def _python(names: tuple[str, ...]) -> list[str]:
    out = []
    for name in names:
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in name)
        out.append("in_" if name == "in" else snake)
    return out


@strawberry.type(description="One condition of a segment's definition: exactly one field is set.")
class SegmentCondition:
    all: list["SegmentCondition"] | None = strawberry.field(description="Every condition holds.")
    any_: list["SegmentCondition"] | None = strawberry.field(
        name="any", description="At least one condition holds."
    )
    not_: Optional["SegmentCondition"] = strawberry.field(
        name="not", description="The condition does not hold."
    )
    attribute: SegmentAttributeCondition | None = strawberry.field(
        description="A text analysis attribute."
    )
    score: SegmentScoreCondition | None = strawberry.field(
        description="A numeric analysis attribute."
    )
    lifecycle_stage: SegmentLifecycleStageCondition | None = strawberry.field(
        description="The lifecycle stage."
    )
    quality_score: SegmentQualityScoreCondition | None = strawberry.field(
        description="The quality score."
    )
    event: SegmentEventCondition | None = strawberry.field(description="Did an event or not.")
    event_count: SegmentEventCountCondition | None = strawberry.field(
        description="How many events."
    )
    event_amount: SegmentEventAmountCondition | None = strawberry.field(
        description="Total amount of events."
    )
    consent: SegmentConsentCondition | None = strawberry.field(
        description="May be processed for a purpose."
    )

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> "SegmentCondition":
        """From the stored JSON form."""
        found: dict[str, Any] = dict.fromkeys(
            (
                "all",
                "any_",
                "not_",
                "attribute",
                "score",
                "lifecycle_stage",
                "quality_score",
                "event",
                "event_count",
                "event_amount",
                "consent",
            )
        )
        if "all" in raw:
            found["all"] = [cls.of(c) for c in raw["all"]]
        elif "any" in raw:
            found["any_"] = [cls.of(c) for c in raw["any"]]
        elif "not" in raw:
            found["not_"] = cls.of(raw["not"])
        elif "attribute" in raw:
            found["attribute"] = SegmentAttributeCondition(
                **_cut(raw["attribute"], "attribute", "equals", "in")
            )
        elif "score" in raw:
            found["score"] = SegmentScoreCondition(
                **_cut(raw["score"], "attribute", "equals", "in", "atLeast", "atMost")
            )
        elif "lifecycleStage" in raw:
            stages = [LifecycleStage(s) for s in raw["lifecycleStage"]["in"]]
            found["lifecycle_stage"] = SegmentLifecycleStageCondition(in_=stages)
        elif "qualityScore" in raw:
            found["quality_score"] = SegmentQualityScoreCondition(
                **_cut(raw["qualityScore"], "atLeast", "atMost")
            )
        elif "event" in raw:
            found["event"] = SegmentEventCondition(
                **_cut(raw["event"], "type", "withinDays", "did")
            )
        elif "eventCount" in raw:
            found["event_count"] = SegmentEventCountCondition(
                **_cut(raw["eventCount"], "type", "withinDays", "atLeast", "atMost")
            )
        elif "eventAmount" in raw:
            values = _cut(raw["eventAmount"], "type", "withinDays", "currency", "atLeast", "atMost")
            for bound in ("at_least", "at_most"):
                if values[bound] is not None:
                    values[bound] = Decimal(values[bound])
            found["event_amount"] = SegmentEventAmountCondition(**values)
        elif "consent" in raw:
            found["consent"] = SegmentConsentCondition(purpose=raw["consent"]["purpose"])
        return cls(**found)


@strawberry.type(
    description="How many customers a definition selects now. The SQL part is counted "
    "exactly; consent (when the definition has consent conditions) is applied to every "
    "customer when at most 2,000 match, else to a sample of 2,000 and the share scaled up."
)
class SegmentSize:
    matching: int = strawberry.field(
        description="Customers matching every condition but consent (exact)."
    )
    estimated: int = strawberry.field(
        description="Members: `matching` with consent applied (exact when `exact`)."
    )
    exact: bool = strawberry.field(description="False when `estimated` comes from a sample.")
    consent_checked: int = strawberry.field(
        description="Customers whose consent was checked (0 without consent conditions)."
    )

    @classmethod
    def of(cls, found: service.SegmentSize) -> "SegmentSize":
        return cls(
            matching=found.matching,
            estimated=found.estimated,
            exact=found.exact,
            consent_checked=found.consent_checked,
        )


_MEMBER_ORDER = [SortKey("id")]


def _member_cursor(segment_id: uuid.UUID, customer_id: uuid.UUID) -> str:
    return encode_cursor(_MEMBER_ORDER, [customer_id], list_name=f"segment:{segment_id}")


def _member_key(segment_id: uuid.UUID, cursor: str | None, field: str) -> uuid.UUID | None:
    if cursor is None:
        return None
    (value,) = decode_cursor(cursor, _MEMBER_ORDER, field, list_name=f"segment:{segment_id}")
    if not isinstance(value, uuid.UUID):
        raise ValidationFailed(
            "The cursor is not valid for this list.", field=field, code=ErrorCode.INVALID_CURSOR
        )
    return value


@strawberry.type(
    name="Segment",
    description="A saved segment: a rule over analysis attributes, scores, lifecycle stage, "
    "quality, events and consent, evaluated in SQL when asked (members are never stored). "
    "Restricted, erased and merged-away customers are never members.",
)
class SegmentNode(Node):
    name: str = strawberry.field(description="Unique name.")
    description: str = strawberry.field(description="What it is for (may be empty).")
    definition: SegmentCondition = strawberry.field(description="Who is a member.")
    created_at: datetime = strawberry.field(description="When it was created.")
    updated_at: datetime = strawberry.field(description="When it last changed.")
    row: strawberry.Private[Segment]

    @classmethod
    def from_row(cls, row: Segment) -> "SegmentNode":
        return cls(
            id=global_id("Segment", row.id),
            name=row.name,
            description=row.description,
            definition=SegmentCondition.of(service.stored_condition(row)),
            created_at=row.created_at,
            updated_at=row.updated_at,
            row=row,
        )

    @strawberry.field(description="How many members it has now (see SegmentSize).")
    async def size(self) -> SegmentSize:
        return SegmentSize.of(await service.segment_size(self.row))

    @strawberry.field(
        description="Its members now, by customer id (keyset pages both ways), as the "
        "caller's role may see customers; reading them is audited like any customer read."
    )
    async def members(
        self,
        info: Info[Any, Any],
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[CustomerNode]:
        args = PageArgs(first, after, last, before)
        size = args.size()
        key = self.row.id
        found = await service.members(
            service.definition_of(self.row),
            service.MembersPage(
                size,
                after=_member_key(key, after, "after"),
                before=_member_key(key, before, "before"),
                backwards=args.backwards,
            ),
        )
        nodes = await customer_nodes(info, found.ids)
        edges = [
            Edge(node=node, make_cursor=functools.partial(_member_cursor, key, i))
            for i, node in zip(found.ids, nodes, strict=True)
            if node is not None
        ]
        return Connection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=found.has_next_page,
                has_previous_page=found.has_previous_page,
                start_cursor=_member_cursor(key, found.ids[0]) if found.ids else None,
                end_cursor=_member_cursor(key, found.ids[-1]) if found.ids else None,
            ),
        )


@strawberry.type(description="A page of segments, by name.")
class SegmentConnection(CountedConnection[SegmentNode]):
    pass


# --------------------------------------------------------------------------- results


@strawberry.type(description="The segment as saved.")
class SegmentSaved:
    segment: SegmentNode = strawberry.field(description="The segment, with its change applied.")


_DEFINITION_PROBLEMS = (
    "a condition sets no kind or several, names an unknown attribute, an event type never "
    "stored (and not a purchase type) or an undeclared purpose, has a bad bound, or puts "
    "consent under any/not (every problem is listed with its path)"
)
CREATE_SEGMENT = Outcomes(
    "CreateSegmentResult",
    SegmentSaved,
    {
        ValidationError: f"the name is empty or too long, or {_DEFINITION_PROBLEMS}",
        ConflictError: "another segment has this name",
    },
)
CreateSegmentResult = Annotated[
    SegmentSaved | ValidationError | ConflictError, CREATE_SEGMENT.marker
]
UPDATE_SEGMENT = Outcomes(
    "UpdateSegmentResult",
    SegmentSaved,
    {
        ValidationError: "the id is not a segment's, the name or definition is null, the name "
        f"is empty or too long, or {_DEFINITION_PROBLEMS}",
        NotFoundError: "no segment has this id",
        ConflictError: "another segment has this name",
    },
)
UpdateSegmentResult = Annotated[
    SegmentSaved | ValidationError | NotFoundError | ConflictError, UPDATE_SEGMENT.marker
]
SEGMENT_PREVIEW = Outcomes(
    "SegmentPreviewResult",
    SegmentSize,
    {ValidationError: _DEFINITION_PROBLEMS},
)
SegmentPreviewResult = Annotated[SegmentSize | ValidationError, SEGMENT_PREVIEW.marker]


def _change(input: UpdateSegmentInput) -> service.SegmentChange:
    """The service's change by the one partial-update rule (:mod:`cdlm.graphql.updates`)."""
    given = Changes()
    name = given.kept(input.name, "input.name")
    given.kept(input.definition, "input.definition")
    segment_id = parse_id(input.id, "input.id", "Segment")
    given.check()
    return service.SegmentChange(
        segment_id,
        name=name,
        description=given.clearable(input.description, ""),
        definition=to_plain(input.definition),
    )


_BY_NAME = [SortKey("name"), SortKey("id")]


# --------------------------------------------------------------------------- roots


@strawberry.type
class SegmentQuery:
    @strawberry.field(
        description="A segment by global id (null when none has it).",
        extensions=allow(*READERS),
    )
    async def segment(
        self,
        id: Annotated[strawberry.ID, strawberry.argument(description="Global id of a segment.")],
    ) -> SegmentNode | None:
        found = await service.segment(parse_id(id, "id", "Segment"))
        return SegmentNode.from_row(found) if found is not None else None

    @strawberry.field(description="Saved segments, by name.", extensions=allow(*READERS))
    async def segments(
        self,
        filter: Annotated[
            SegmentFilter | None, strawberry.argument(description="Which segments (default: all).")
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> SegmentConnection:
        given = filter or SegmentFilter()
        page = await paginate(
            service.segments_query(service.SegmentFilter(name_contains=given.name_contains)),
            order=_BY_NAME,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        return page.to_connection(SegmentNode.from_row, SegmentConnection)  # type: ignore[return-value]

    @strawberry.field(
        description=SEGMENT_PREVIEW.describe(
            "The size a definition would have now, before saving it; nothing is saved."
        ),
        extensions=allow(*READERS),
    )
    @errors_as_data
    async def segment_preview(
        self,
        info: Info[Any, Any],
        definition: Annotated[
            SegmentConditionInput, strawberry.argument(description="Who would be a member.")
        ],
    ) -> SegmentPreviewResult:
        found = await service.preview(
            await require_principal(info), to_plain(definition), "definition"
        )
        return SegmentSize.of(found)


@strawberry.type
class SegmentMutation:
    @strawberry.mutation(
        description=CREATE_SEGMENT.describe("Save a segment definition under a unique name."),
        extensions=allow(*EDITORS),
    )
    @errors_as_data
    async def create_segment(
        self,
        info: Info[Any, Any],
        input: Annotated[CreateSegmentInput, strawberry.argument(description="The segment.")],
    ) -> CreateSegmentResult:
        row = await service.create_segment(
            await require_principal(info),
            service.SegmentDraft(
                name=input.name,
                description=input.description,
                definition=to_plain(input.definition),
            ),
        )
        return SegmentSaved(segment=SegmentNode.from_row(row))

    @strawberry.mutation(
        description=UPDATE_SEGMENT.describe(
            "Change a segment: omitted fields keep their value; a new definition replaces the "
            "old one whole."
        ),
        extensions=allow(*EDITORS),
    )
    @errors_as_data
    async def update_segment(
        self,
        info: Info[Any, Any],
        input: Annotated[UpdateSegmentInput, strawberry.argument(description="The changes.")],
    ) -> UpdateSegmentResult:
        change = _change(input)
        row = await service.update_segment(await require_principal(info), change)
        return SegmentSaved(segment=SegmentNode.from_row(row))


#: How node(id:) fetches this domain's objects.
NODE_KINDS: tuple[NodeKind, ...] = (
    NodeKind.of("Segment", READERS, rows_fetcher(service.segments_by_ids, SegmentNode.from_row)),
)
