"""Mutations of acquisition and rectification."""

import uuid
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, NewType

import strawberry
from strawberry.types.info import Info
from strawberry.types.unset import UNSET

from cdlm.core.errors import ErrorCode, NotFound, ValidationFailed
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LawfulBasis, LifecycleStage, SourceKind
from cdlm.customers import event_input, rights, service
from cdlm.customers import events as event_service
from cdlm.customers import ingest as ingest_service
from cdlm.customers.api.reading import customer_nodes
from cdlm.customers.api.types import CustomerNode
from cdlm.customers.survivorship import trust_table
from cdlm.graphql.errors import (
    ConflictError,
    FieldIssue,
    InvalidStateError,
    NotFoundError,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.scalars import parse_id
from cdlm.idempotency import service as idempotency
from cdlm.quality.fields import PROFILE, ProfileField

INGESTERS = (Role.INGEST, Role.ADMIN, Role.STEWARD)
RECTIFIERS = (Role.ADMIN, Role.STEWARD, Role.AGENT)


@strawberry.input(description="Where the data comes from and why it may be processed.")
class SourceInput:
    system: str = strawberry.field(description="Lower-case code, e.g. crm or web-shop.")
    kind: SourceKind
    collected_at: datetime
    lawful_basis: LawfulBasis
    purpose: str = strawberry.field(description="Purpose code, e.g. marketing.advertising.")


@strawberry.input
class AddressInput:
    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    region: str | None = None
    postal_code: str | None = None
    country: str | None = strawberry.field(default=None, description="Code or English name.")


@strawberry.input
class ProfileInput:
    given_name: str | None = None
    family_name: str | None = None
    email: str | None = None
    phone: str | None = strawberry.field(
        default=None, description="E.164, or national format read with the address country."
    )
    birth_date: str | None = strawberry.field(default=None, description="YYYY-MM-DD.")
    address: AddressInput | None = None


def _given(source: Any, field: ProfileField) -> Any:
    """The value at ``field``'s place in an input; UNSET when a level above it is missing."""
    value = source
    for attribute in field.attributes:
        if value is None or value is UNSET:
            return UNSET
        value = getattr(value, attribute)
    return value


def _flat(profile: ProfileInput | None) -> dict[str, str | None]:
    if profile is None:
        return {}
    given = {field.name: _given(profile, field) for field in PROFILE}
    return {name: None if value is UNSET else value for name, value in given.items()}


@strawberry.input
class IngestCustomerInput:
    source: SourceInput
    profile: ProfileInput | None = None
    external_ids: list[str] = strawberry.field(
        default_factory=list, description="namespace:value, e.g. crm:123."
    )
    lifecycle_stage: LifecycleStage | None = None


@strawberry.enum(description="What an ingest did.")
class IngestOutcome(Enum):
    CREATED = "created"
    MATCHED = "matched"


@strawberry.type(description="The record was stored. Refused values are listed in `issues`.")
class CustomerIngested:
    customer_id: strawberry.ID
    outcome: IngestOutcome
    matched_rule: str | None = strawberry.field(
        description="The identifier that matched: external_id:<system>, email or phone."
    )
    source_record_id: strawberry.ID
    issues: list[FieldIssue] = strawberry.field(
        description="Values kept out of the profile, and identifiers not attached, with reasons."
    )
    replayed: bool = strawberry.field(description="True when this repeats an earlier call.")


IngestCustomerResult = Annotated[
    CustomerIngested | ValidationError | ConflictError, strawberry.union("IngestCustomerResult")
]


EventRecord = NewType("EventRecord", object)

#: Registered in the schema's scalar map (see ``cdlm.api.schema``).
EVENT_RECORD_SCALAR = strawberry.scalar(
    name="EventRecord",
    description=event_input.DESCRIPTION,
    serialize=lambda value: value,
    parse_value=lambda value: value,
)


@strawberry.enum
class EventStatus(Enum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


@strawberry.type
class EventItemResult:
    index: int
    status: EventStatus
    event_id: strawberry.ID | None
    issues: list[FieldIssue]


@strawberry.type(description="Per-item outcome of a batch; valid items are stored.")
class EventsIngested:
    accepted: int
    duplicates: int
    rejected: int
    items: list[EventItemResult]
    replayed: bool


IngestEventsResult = Annotated[
    EventsIngested | ValidationError | ConflictError, strawberry.union("IngestEventsResult")
]


@strawberry.input(description="Omit a field to keep it, send null to clear it.")
class AddressChangesInput:
    line1: str | None = UNSET
    line2: str | None = UNSET
    city: str | None = UNSET
    region: str | None = UNSET
    postal_code: str | None = UNSET
    country: str | None = UNSET


@strawberry.input(description="Omit a field to keep it, send null to clear it.")
class ProfileChangesInput:
    given_name: str | None = UNSET
    family_name: str | None = UNSET
    email: str | None = UNSET
    phone: str | None = UNSET
    birth_date: str | None = UNSET
    address: AddressChangesInput | None = UNSET


@strawberry.input
class UpdateCustomerInput:
    id: strawberry.ID
    changes: ProfileChangesInput | None = None
    lifecycle_stage: LifecycleStage | None = None


def profile_changes(given: ProfileChangesInput | None) -> dict[str, str | None]:
    """The fields the input names (omitted: keep; null: clear), by profile field name."""
    if given is None:
        return {}
    changes: dict[str, str | None] = {}
    for field in PROFILE:
        value = _given(given, field)
        if value is not UNSET:
            changes[field.name] = value
    return changes


@strawberry.type
class CustomerUpdated:
    customer: CustomerNode


UpdateCustomerResult = Annotated[
    CustomerUpdated | ValidationError | NotFoundError, strawberry.union("UpdateCustomerResult")
]
LiftRestrictionResult = Annotated[
    CustomerUpdated | ValidationError | NotFoundError | InvalidStateError,
    strawberry.union("LiftRestrictionResult"),
]


@strawberry.input(description="Tell the customer before lifting (GDPR Art. 18(3)).")
class LiftRestrictionInput:
    customer_id: strawberry.ID
    reason: str


def _issues(items: list[Any]) -> list[FieldIssue]:
    return [FieldIssue(field=i.field, code=i.code, message=i.message) for i in items]


async def _shown(info: Info[Any, Any], customer_id: uuid.UUID) -> CustomerNode:
    """The changed customer as the payload's selection asks for it (read and audited)."""
    node = (await customer_nodes(info, [customer_id], below="customer."))[0]
    if node is None:  # erased by another request in between
        raise NotFound("No customer has this id.", field="input.id")
    return node


@strawberry.type
class CustomerMutation:
    @strawberry.mutation(
        description="Add or update a customer from a source; idempotent with idempotencyKey.",
        extensions=allow(*INGESTERS),
    )
    @errors_as_data
    async def ingest_customer(
        self,
        info: Info[Any, Any],
        input: IngestCustomerInput,
        idempotency_key: str | None = None,
    ) -> IngestCustomerResult:
        record = ingest_service.CustomerIngest(
            source=ingest_service.Source(
                system=input.source.system,
                kind=input.source.kind,
                collected_at=input.source.collected_at,
                lawful_basis=input.source.lawful_basis,
                purpose=input.source.purpose,
            ),
            profile=_flat(input.profile),
            external_ids=list(input.external_ids),
            lifecycle_stage=input.lifecycle_stage,
        )
        done = await ingest_service.ingest_one(
            await require_principal(info),
            info.context.vault,
            record,
            idempotency_key,
            trust_table(info.context.settings.source_trust),
        )
        result = done.result
        return CustomerIngested(
            customer_id=strawberry.ID(str(result.customer_id)),
            outcome=IngestOutcome(result.outcome.value),
            matched_rule=result.matched_rule,
            source_record_id=strawberry.ID(str(result.source_record_id)),
            issues=_issues(result.issues),
            replayed=done.replayed,
        )

    @strawberry.mutation(
        description="Store up to 1,000 interaction events; idempotent with idempotencyKey.",
        extensions=allow(*INGESTERS),
    )
    @errors_as_data
    async def ingest_events(
        self,
        info: Info[Any, Any],
        events: list[EventRecord],
        idempotency_key: str | None = None,
    ) -> IngestEventsResult:
        if len(events) > event_service.MAX_BATCH:
            raise ValidationFailed(
                f"A batch holds at most {event_service.MAX_BATCH} events.",
                field="events",
                code=ErrorCode.TOO_MANY_ITEMS,
            )
        converted = [event_input.parse_event(item, p) for p, item in enumerate(events)]
        malformed = {p: c for p, c in enumerate(converted) if isinstance(c, list)}
        valid = [
            (p, c) for p, c in enumerate(converted) if isinstance(c, event_service.EventIngest)
        ]
        batch, replayed = await event_service.ingest_events(
            await require_principal(info),
            info.context.vault,
            [c for _, c in valid],
            idempotency_key,
            idempotency.fingerprint(events),
        )
        items: list[EventItemResult] = []
        for inner, (position, _) in enumerate(valid):
            if inner in batch.accepted:
                items.append(
                    EventItemResult(
                        index=position,
                        status=EventStatus.ACCEPTED,
                        event_id=strawberry.ID(str(batch.accepted[inner])),
                        issues=[],
                    )
                )
            elif inner in batch.duplicates:
                items.append(
                    EventItemResult(
                        index=position,
                        status=EventStatus.DUPLICATE,
                        event_id=strawberry.ID(str(batch.duplicates[inner])),
                        issues=[],
                    )
                )
            else:
                problems = [
                    FieldIssue(
                        field=i.field.replace(f"events[{inner}]", f"events[{position}]", 1),
                        code=i.code,
                        message=i.message,
                    )
                    for i in batch.rejected.get(inner, [])
                ]
                items.append(
                    EventItemResult(
                        index=position, status=EventStatus.REJECTED, event_id=None, issues=problems
                    )
                )
        for position, refused in malformed.items():
            items.append(
                EventItemResult(
                    index=position,
                    status=EventStatus.REJECTED,
                    event_id=None,
                    issues=_issues(refused),
                )
            )
        items.sort(key=lambda item: item.index)
        return EventsIngested(
            accepted=sum(1 for i in items if i.status is EventStatus.ACCEPTED),
            duplicates=sum(1 for i in items if i.status is EventStatus.DUPLICATE),
            rejected=sum(1 for i in items if i.status is EventStatus.REJECTED),
            items=items,
            replayed=replayed,
        )

    @strawberry.mutation(
        description="Rectify a customer's profile (staff corrections outrank every source).",
        extensions=allow(*RECTIFIERS),
    )
    @errors_as_data
    async def update_customer(
        self, info: Info[Any, Any], input: UpdateCustomerInput
    ) -> UpdateCustomerResult:
        actor = await require_principal(info)
        row = await service.update_customer(
            actor,
            info.context.vault,
            parse_id(input.id, "input.id"),
            profile_changes(input.changes),
            lifecycle_stage=input.lifecycle_stage,
            trust=trust_table(info.context.settings.source_trust),
        )
        return CustomerUpdated(customer=await _shown(info, row.id))

    @strawberry.mutation(
        description="Let a restricted customer's data be processed again.",
        extensions=allow(Role.ADMIN, Role.PRIVACY_OFFICER),
    )
    @errors_as_data
    async def lift_customer_restriction(
        self, info: Info[Any, Any], input: LiftRestrictionInput
    ) -> LiftRestrictionResult:
        actor = await require_principal(info)
        row = await rights.lift_restriction(
            actor, parse_id(input.customer_id, "input.customerId"), input.reason
        )
        return CustomerUpdated(customer=await _shown(info, row.id))
