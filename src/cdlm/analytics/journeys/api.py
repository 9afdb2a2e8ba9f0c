"""GraphQL of journeys: ``funnel``, ``topPaths`` and the types of ``Customer.journey``."""

import functools
import uuid
from datetime import datetime
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.analytics.journeys import loaders, service
from cdlm.core.errors import ErrorCode, ValidationFailed
from cdlm.core.roles import Role
from cdlm.customers.api.reading import role_of
from cdlm.customers.api.types import EventNode, utc_moment
from cdlm.graphql.errors import NotFoundError, Outcomes, ValidationError, errors_as_data
from cdlm.graphql.pagination import (
    Connection,
    Edge,
    PageArgs,
    PageInfo,
    SortKey,
    decode_cursor,
    encode_cursor,
)
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.relay import parse_optional_id
from cdlm.graphql.scalars import Duration

#: Who reads funnels and paths (aggregates): the roles of analytics.
READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST)
_ORDER = [SortKey("occurred_at"), SortKey("id")]
_LIST = "journey"
_EXCLUDED = (
    "Customers whose processing is restricted, who were erased or merged into another "
    "profile are left out."
)
_FROM = "Start of the range, included (with a time zone)."
_TO = "End of the range, excluded (with a time zone); after `from`."


# --------------------------------------------------------------------------- funnel


@strawberry.input(
    description="A funnel: a customer enters at their first event of the first step's type "
    "in [`from`, `to`); each next step counts the first event of its type after the previous "
    "step's event (later by time, then by event id at the same instant: a repeated type "
    "needs a second, later event) and at most `within` after the entry (it may fall after "
    f"`to`). {_EXCLUDED}"
)
class FunnelInput:
    steps: list[str] = strawberry.field(
        description=f"Event type codes in order, 1 to {service.MAX_STEPS}; each must have at "
        "least one stored event (else UNKNOWN_CODE on its position). A type may repeat."
    )
    within: Duration = strawberry.field(
        description="How long after the entry the later steps count (inclusive); positive, "
        f"at most {service.MAX_WITHIN.days} days (e.g. `P7D`)."
    )
    from_: datetime = strawberry.field(name="from", description=f"Entries from: {_FROM}")
    to: datetime = strawberry.field(description=f"Entries until: {_TO}")
    segment_id: strawberry.ID | None = strawberry.field(
        default=None,
        description="Global id of a Segment: only its members now count (as "
        "`Segment.members` lists them, consent conditions included); null: every customer.",
    )


@strawberry.type(description="One step of a funnel.")
class FunnelStep:
    event_type: str = strawberry.field(description="The step's event type code.")
    customers: int = strawberry.field(
        description="Customers who reached this step (for the first: who entered)."
    )
    conversion: float | None = strawberry.field(
        description="Share of the previous step's customers who reached this one, 0 to 1; "
        "null for the first step and when nobody reached the previous one."
    )
    overall: float = strawberry.field(
        description="Share of the customers who entered that reached this step, 0 to 1 (1 "
        "for the first step; 0 when nobody entered)."
    )
    median_seconds_from_previous: float | None = strawberry.field(
        description="Median time from the previous step's event to this one's, in seconds "
        "(continuous median: the mean of the two middle values for an even count); null for "
        "the first step and when nobody reached this one."
    )

    @classmethod
    def of(cls, step: service.FunnelStep) -> "FunnelStep":
        return cls(
            event_type=step.event_type,
            customers=step.customers,
            conversion=step.conversion,
            overall=step.overall,
            median_seconds_from_previous=step.median_seconds_from_previous,
        )


@strawberry.type(description=f"A funnel's steps in order, computed now in SQL. {_EXCLUDED}")
class Funnel:
    steps: list[FunnelStep] = strawberry.field(description="The steps, in the order asked.")
    entered: int = strawberry.field(description="Customers who entered (the first step's).")


FUNNEL = Outcomes(
    "FunnelResult",
    Funnel,
    {
        ValidationError: "steps are empty or more than "
        f"{service.MAX_STEPS}, a step type has no stored event, `from` is not before `to` or "
        "lacks a time zone, `within` is not positive or too long, or the segment id is "
        "malformed (every problem is listed with its path)",
        NotFoundError: "no segment has `segmentId`",
    },
)
FunnelResult = Annotated[Funnel | ValidationError | NotFoundError, FUNNEL.marker]


def _range(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """``from`` and ``to`` in UTC (a moment without a time zone refused on its path)."""
    found = utc_moment(start, "input.from"), utc_moment(end, "input.to")
    assert found[0] is not None
    assert found[1] is not None
    return found[0], found[1]


def _funnel_query(input: FunnelInput) -> service.FunnelQuery:
    start, end = _range(input.from_, input.to)
    return service.FunnelQuery(
        steps=tuple(input.steps),
        within=input.within,
        start=start,
        end=end,
        segment_id=parse_optional_id(input.segment_id, "input.segmentId", "Segment"),
    )


# --------------------------------------------------------------------------- top paths


@strawberry.input(
    description="The most common paths after a type: per customer with an event of type "
    "`startingWith` in [`from`, `to`), from their FIRST such event (counted once per "
    "customer), the types of their next events in [`from`, `to`) in time order with "
    "consecutive repeats collapsed (view, view, cart counts as view, cart). "
    f"{_EXCLUDED}"
)
class TopPathsInput:
    starting_with: str = strawberry.field(
        description="Event type code the paths start with (it must have a stored event)."
    )
    length: int = strawberry.field(
        default=service.DEFAULT_PATH_LENGTH,
        description=f"Types per path, the start included: {service.MIN_PATH_LENGTH} to "
        f"{service.MAX_PATH_LENGTH}.",
    )
    from_: datetime = strawberry.field(name="from", description=_FROM)
    to: datetime = strawberry.field(description=_TO)
    first: int = strawberry.field(
        default=service.DEFAULT_PATHS,
        description=f"How many paths to list, most common first: 1 to {service.MAX_PATHS}.",
    )


@strawberry.type(description="A sequence of event types and how many customers followed it.")
class EventPath:
    event_types: list[str] = strawberry.field(
        description="The types in order, the start first; shorter than `length` when the "
        "customer had no further (different) event in the range."
    )
    customers: int = strawberry.field(description="Customers whose path this is.")
    share: float = strawberry.field(
        description="Share of the customers who started (`TopPaths.started`), 0 to 1."
    )


@strawberry.type(description=f"The most common paths, most followed first. {_EXCLUDED}")
class TopPaths:
    paths: list[EventPath] = strawberry.field(
        description="At most `first` paths, by customers (descending), then by the types."
    )
    started: int = strawberry.field(
        description="Customers with an event of the starting type in the range: every one "
        "has a path (listed here or not)."
    )


TOP_PATHS = Outcomes(
    "TopPathsResult",
    TopPaths,
    {
        ValidationError: "the starting type has no stored event, `length` or `first` is out "
        "of range, or `from` is not before `to` or lacks a time zone (every problem is "
        "listed with its path)",
    },
)
TopPathsResult = Annotated[TopPaths | ValidationError, TOP_PATHS.marker]


# --------------------------------------------------------------------------- journey


@strawberry.type(description="One event of a customer's journey.")
class JourneyStep:
    event_type: str = strawberry.field(description="Event type code, e.g. order.placed.")
    channel: str = strawberry.field(description="Channel code, e.g. web, store, email.")
    occurred_at: datetime = strawberry.field(description="When it happened.")
    seconds_since_previous: float | None = strawberry.field(
        description="Seconds since the customer's event before this one (also across "
        "pages); null for the customer's first event."
    )
    event_id: strawberry.Private[uuid.UUID]

    @strawberry.field(
        description="The event itself (its properties masked by role as on `Customer.events`"
        "); null when it was erased meanwhile."
    )
    async def event(self, info: Info[Any, Any]) -> EventNode | None:
        context = info.context
        found = await context.loaders.get(loaders.events_by_id, context.vault).load(self.event_id)
        return EventNode.of(found, role_of(info)) if found is not None else None

    @classmethod
    def of(cls, step: service.JourneyStep) -> "JourneyStep":
        return cls(
            event_type=step.event_type,
            channel=step.channel,
            occurred_at=step.occurred_at,
            seconds_since_previous=step.seconds_from_previous,
            event_id=step.event_id,
        )


@strawberry.type(description="A page of a customer's journey, oldest first, Relay style.")
class JourneyStepConnection(Connection[JourneyStep]):
    pass


def _cursor(step: service.JourneyStep) -> str:
    return encode_cursor(_ORDER, [step.occurred_at, step.event_id], list_name=_LIST)


def journey_page(first: int | None, after: str | None) -> service.JourneyPage:
    """The page ``first``/``after`` ask for (bad sizes and cursors refused on their name)."""
    size = PageArgs(first, after).size()
    if after is None:
        return service.JourneyPage(size)
    at, event_id = decode_cursor(after, _ORDER, "after", list_name=_LIST)
    if not isinstance(at, datetime) or not isinstance(event_id, uuid.UUID):
        raise ValidationFailed(
            "The cursor is not valid for this list.", field="after", code=ErrorCode.INVALID_CURSOR
        )
    return service.JourneyPage(size, (at, event_id))


async def journey_connection(
    info: Info[Any, Any], customer_id: uuid.UUID, first: int | None, after: str | None
) -> JourneyStepConnection:
    """``Customer.journey``: one page, read with the same page of every customer of the
    request (one statement)."""
    page = journey_page(first, after)
    found = await info.context.loaders.get(loaders.journeys_by_customer, page).load(customer_id)
    edges = [
        Edge(node=JourneyStep.of(step), make_cursor=functools.partial(_cursor, step))
        for step in found.steps
    ]
    return JourneyStepConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=found.has_next_page,
            has_previous_page=after is not None,
            start_cursor=_cursor(found.steps[0]) if found.steps else None,
            end_cursor=_cursor(found.steps[-1]) if found.steps else None,
        ),
    )


# --------------------------------------------------------------------------- roots


@strawberry.type
class JourneyQuery:
    @strawberry.field(
        description=FUNNEL.describe(
            "Per step of a funnel: customers, conversion from the previous step, overall "
            "conversion and the median time from the previous step."
        ),
        extensions=allow(*READERS),
    )
    @errors_as_data
    async def funnel(
        self,
        info: Info[Any, Any],
        input: Annotated[FunnelInput, strawberry.argument(description="The funnel.")],
    ) -> FunnelResult:
        found = await service.funnel(await require_principal(info), _funnel_query(input))
        return Funnel(steps=[FunnelStep.of(s) for s in found.steps], entered=found.entered)

    @strawberry.field(
        description=TOP_PATHS.describe(
            "The most common sequences of event types customers follow after a type."
        ),
        extensions=allow(*READERS),
    )
    @errors_as_data
    async def top_paths(
        self,
        info: Info[Any, Any],
        input: Annotated[TopPathsInput, strawberry.argument(description="The paths.")],
    ) -> TopPathsResult:
        start, end = _range(input.from_, input.to)
        query = service.TopPathsQuery(input.starting_with, start, end, input.length, input.first)
        found = await service.top_paths(await require_principal(info), query)
        return TopPaths(
            paths=[
                EventPath(event_types=list(p.event_types), customers=p.customers, share=p.share)
                for p in found.paths
            ],
            started=found.started,
        )
