"""``ingestEvents``: a typed batch of interactions, each item with its own outcome.

The GraphQL types are checked by the document (a wrong type fails the whole request, as the
specification says, and a generated client will not compile it); every semantic problem of an
item (an unknown customer, a bad currency, an amount out of range, a duplicate) is a status of
that item, which never keeps the other items from being stored.
"""

import re
import uuid
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types.arguments import InputContext
from strawberry.types.info import Info

from cdlm.core.errors import ErrorCode, ValidationFailed
from cdlm.core.errors import FieldIssue as Issue
from cdlm.customers import events as event_service
from cdlm.customers.events import EventRules
from cdlm.graphql.enums import describe_enum
from cdlm.graphql.errors import ConflictError, FieldIssue, Outcomes, ValidationError
from cdlm.graphql.permissions import require_principal
from cdlm.graphql.relay import global_id, split_global_id
from cdlm.graphql.vocabulary import IdentifierKind
from cdlm.idempotency import service as idempotency

KEY_CONFLICT = "the idempotencyKey was used before with different input"


@strawberry.input(description="Who an event is about, by an identifier instead of an id.")
class EventIdentifierInput:
    kind: IdentifierKind = strawberry.field(description="What `value` is.")
    value: str = strawberry.field(description="The email, phone or `system:id`.")


@strawberry.input(
    description="One interaction. Give `customerId` or `identifier`. Problems of an event "
    "(unknown customer, bad currency, amount out of range...) are reported on its item, and "
    "never keep the other events from being stored."
)
class EventInput:
    type: str = strawberry.field(description="Event type code, e.g. order.placed.")
    occurred_at: datetime = strawberry.field(description="When it happened, with a time zone.")
    source_system: str = strawberry.field(description="Code of the sending system, e.g. web-shop.")
    channel: str = strawberry.field(
        default="unknown", description="Channel code, e.g. web, store, email."
    )
    customer_id: strawberry.ID | None = strawberry.field(
        default=None, description="The customer's global id; or give `identifier`."
    )
    identifier: EventIdentifierInput | None = strawberry.field(
        default=None, description="An identifier of the customer; or give `customerId`."
    )
    amount: Decimal | None = strawberry.field(
        default=None, description="Money involved (at most 2 decimals), with `currency`."
    )
    currency: str | None = strawberry.field(
        default=None, description="ISO 4217 code, with `amount`."
    )
    properties: JSON | None = strawberry.field(
        default=None,
        description="Any JSON object: at most 16 KiB, nesting at most "
        f"{event_service.MAX_PROPERTIES_DEPTH} levels, finite numbers, whole numbers within "
        "64 bits (signed). Stored encrypted. On feedback events (types of "
        "CDLM_FEEDBACK_EVENT_TYPES, by default review, survey_answer, support_message, "
        "social_mention): `text` (or else `comment`, `message`, `body`) is scored for sentiment "
        "with VADER (English), `nps` is a whole number 0-10 and `csat` 1-5; those scores are "
        "also kept in clear (`Event.sentiment`, `nps`, `csat`), the text only encrypted.",
    )
    external_id: str | None = strawberry.field(
        default=None, description="The source's event id: a resend is reported as DUPLICATE."
    )


@strawberry.input(description="A batch of interactions.")
class IngestEventsInput:
    events: list[EventInput] = strawberry.field(
        description=f"At most {event_service.MAX_BATCH:,} events."
    )


def _event_input(item: Mapping[str, Any]) -> EventInput:
    identifier = item.get("identifier")
    return EventInput(
        type=item["type"],
        occurred_at=item["occurredAt"],
        source_system=item["sourceSystem"],
        channel=item.get("channel", "unknown"),
        customer_id=item.get("customerId"),
        identifier=(
            EventIdentifierInput(kind=identifier["kind"], value=identifier["value"])
            if identifier is not None
            else None
        ),
        amount=item.get("amount"),
        currency=item.get("currency"),
        properties=item.get("properties"),
        external_id=item.get("externalId"),
    )


def _batch_from_input(
    cls: type[IngestEventsInput], value: Mapping[str, Any], _: InputContext
) -> IngestEventsInput:
    """The batch from its input value as graphql-core coerced it (scalars parsed, enums
    resolved, defaults filled in): built directly, as Strawberry's generic conversion walks
    every field of every event and costs several times the coercion itself."""
    return cls(events=[_event_input(item) for item in value["events"]])


IngestEventsInput.__strawberry_definition__.from_input = _batch_from_input  # type: ignore[attr-defined]


class EventIngestStatus(Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


describe_enum(
    EventIngestStatus,
    "What became of one event of a batch.",
    {
        EventIngestStatus.ACCEPTED: "Stored.",
        EventIngestStatus.DUPLICATE: "Stored before (same sourceSystem and externalId): "
        "`eventId` is the stored one.",
        EventIngestStatus.REJECTED: "Not stored: see `issues`.",
    },
)


@strawberry.type(description="What became of one event of the batch.")
class EventIngestItem:
    index: int = strawberry.field(description="Position of the event in `input.events` (from 0).")
    status: EventIngestStatus = strawberry.field(description="Stored, duplicate or rejected.")
    event_id: strawberry.ID | None = strawberry.field(
        description="Global id of the stored event; null when rejected."
    )
    issues: list[FieldIssue] = strawberry.field(
        description="Why it was rejected, each on its path (`input.events.<index>.<field>`)."
    )


@strawberry.type(description="Per-item outcome of a batch; valid items are stored.")
class EventsIngested:
    accepted: int = strawberry.field(description="Events stored now.")
    duplicates: int = strawberry.field(description="Events stored before.")
    rejected: int = strawberry.field(description="Events not stored.")
    items: list[EventIngestItem] = strawberry.field(description="One per event, in input order.")
    replayed: bool = strawberry.field(description="True when this repeats an earlier call.")


INGEST_EVENTS = Outcomes(
    "IngestEventsResult",
    EventsIngested,
    {
        ValidationError: f"the batch holds more than {event_service.MAX_BATCH:,} events or the "
        "idempotencyKey is malformed (problems of single events are item statuses instead)",
        ConflictError: KEY_CONFLICT,
    },
)
IngestEventsResult = Annotated[
    EventsIngested | ValidationError | ConflictError, INGEST_EVENTS.marker
]
_ITEM_PATH = re.compile(r"^input\.events\.\d+")


def _event(item: EventInput, path: str) -> event_service.EventIngest | list[Issue]:
    """The service's event from one typed item, or what keeps it from being one."""
    issues: list[Issue] = []
    customer_id = None
    if item.customer_id is not None:
        found = split_global_id(item.customer_id)
        if found is None or found[0] != "Customer":
            issues.append(
                Issue(f"{path}.customerId", ErrorCode.INVALID_ID, "This is not a customer id.")
            )
        else:
            customer_id = found[1]
    if item.properties is not None and not isinstance(item.properties, dict):
        issues.append(
            Issue(f"{path}.properties", ErrorCode.INVALID_FORMAT, "Properties are a JSON object.")
        )
    if issues:
        return issues
    return event_service.EventIngest(
        type=item.type,
        occurred_at=item.occurred_at,
        source_system=item.source_system,
        channel=item.channel,
        customer_id=customer_id,
        identifier_kind=item.identifier.kind if item.identifier else None,
        identifier_value=item.identifier.value if item.identifier else None,
        amount=item.amount,
        currency=item.currency,
        properties=item.properties,  # type: ignore[arg-type]
        external_id=item.external_id,
    )


def _as_sent(item: EventInput) -> dict[str, Any]:
    """One item as sent, for the idempotency fingerprint."""
    return {
        "type": item.type,
        "at": item.occurred_at.isoformat(),
        "source": item.source_system,
        "channel": item.channel,
        "customer": item.customer_id,
        "identifier": [item.identifier.kind, item.identifier.value] if item.identifier else None,
        "amount": str(item.amount) if item.amount is not None else None,
        "currency": item.currency,
        "properties": item.properties,
        "external_id": item.external_id,
    }


def issues_of(items: list[Any]) -> list[FieldIssue]:
    return [FieldIssue(field=i.field, code=i.code, message=i.message) for i in items]


def _item(position: int, status: EventIngestStatus, event_id: uuid.UUID | None) -> EventIngestItem:
    shown = global_id("Event", event_id) if event_id is not None else None
    return EventIngestItem(index=position, status=status, event_id=shown, issues=[])


async def ingest_batch(
    info: Info[Any, Any], events: list[EventInput], key: str | None
) -> EventsIngested:
    """Store what can be stored of ``events``; every item gets its status."""
    if len(events) > event_service.MAX_BATCH:
        raise ValidationFailed(
            f"A batch holds at most {event_service.MAX_BATCH} events.",
            field="input.events",
            code=ErrorCode.TOO_MANY_ITEMS,
        )
    converted = [_event(item, f"input.events.{p}") for p, item in enumerate(events)]
    valid = [(p, c) for p, c in enumerate(converted) if not isinstance(c, list)]
    settings = info.context.settings
    batch, replayed = await event_service.ingest_events(
        await require_principal(info),
        info.context.vault,
        [c for _, c in valid],
        key,
        idempotency.fingerprint([_as_sent(item) for item in events]),
        prefix="input.events",
        rules=EventRules(settings.feedback_types, settings.recommendations.item_keys),
    )
    items: list[EventIngestItem] = []
    for inner, (position, _) in enumerate(valid):
        if inner in batch.accepted:
            items.append(_item(position, EventIngestStatus.ACCEPTED, batch.accepted[inner]))
        elif inner in batch.duplicates:
            items.append(_item(position, EventIngestStatus.DUPLICATE, batch.duplicates[inner]))
        else:
            refused = _item(position, EventIngestStatus.REJECTED, None)
            refused.issues = [
                FieldIssue(
                    field=_ITEM_PATH.sub(f"input.events.{position}", i.field, count=1),
                    code=i.code,
                    message=i.message,
                )
                for i in batch.rejected.get(inner, [])
            ]
            items.append(refused)
    for position, problems in enumerate(converted):
        if isinstance(problems, list):
            refused = _item(position, EventIngestStatus.REJECTED, None)
            refused.issues = issues_of(problems)
            items.append(refused)
    items.sort(key=lambda item: item.index)
    return EventsIngested(
        accepted=sum(1 for i in items if i.status is EventIngestStatus.ACCEPTED),
        duplicates=sum(1 for i in items if i.status is EventIngestStatus.DUPLICATE),
        rejected=sum(1 for i in items if i.status is EventIngestStatus.REJECTED),
        items=items,
        replayed=replayed,
    )
