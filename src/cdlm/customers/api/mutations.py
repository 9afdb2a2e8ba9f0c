"""Mutations of acquisition and rectification."""

import uuid
from datetime import date, datetime
from enum import Enum
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info
from strawberry.types.unset import UNSET

from cdlm.core.errors import NotFound
from cdlm.core.roles import Role
from cdlm.customers import events as event_service
from cdlm.customers import ingest as ingest_service
from cdlm.customers import rights, service
from cdlm.customers.api.event_ingest import (
    INGEST_EVENTS,
    KEY_CONFLICT,
    IngestEventsInput,
    IngestEventsResult,
    ingest_batch,
    issues_of,
)
from cdlm.customers.api.queries import READERS
from cdlm.customers.api.reading import customer_nodes
from cdlm.customers.api.types import CustomerNode
from cdlm.customers.survivorship import trust_table
from cdlm.graphql.enums import describe_enum
from cdlm.graphql.errors import (
    ConflictError,
    FieldIssue,
    InvalidStateError,
    NotFoundError,
    Outcomes,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.relay import global_id, parse_id
from cdlm.graphql.updates import Changes
from cdlm.graphql.vocabulary import LawfulBasis, LifecycleStage, SourceKind
from cdlm.quality.fields import PROFILE, ProfileField

INGESTERS = (Role.INGEST, Role.ADMIN, Role.STEWARD)
RECTIFIERS = (Role.ADMIN, Role.STEWARD, Role.AGENT)
IDEMPOTENCY_KEY = (
    "Makes the call idempotent: a retry with the same key and input returns the first "
    "result (`replayed: true`) and writes nothing new (1 to 200 characters)."
)


@strawberry.input(description="Where the data comes from and why it may be processed.")
class SourceInput:
    system: str = strawberry.field(description="Lower-case code, e.g. crm or web-shop.")
    kind: SourceKind = strawberry.field(description="The kind of touchpoint.")
    collected_at: datetime = strawberry.field(
        description="When the source collected the data (with a time zone)."
    )
    lawful_basis: LawfulBasis = strawberry.field(
        description="Why the source may process it (GDPR Art. 6(1))."
    )
    purpose: str = strawberry.field(description="Purpose code, e.g. marketing.advertising.")


@strawberry.input(description="A postal address as the source has it; omitted parts unknown.")
class AddressInput:
    line1: str | None = strawberry.field(default=None, description="Street and number.")
    line2: str | None = strawberry.field(default=None, description="Flat, floor, building.")
    city: str | None = strawberry.field(default=None, description="City or town.")
    region: str | None = strawberry.field(
        default=None, description="Region, state or province (name or ISO 3166-2 code)."
    )
    postal_code: str | None = strawberry.field(
        default=None, description="Postal code; checked against the country's format."
    )
    country: str | None = strawberry.field(default=None, description="Code or English name.")


@strawberry.input(description="Profile values as the source has them; omitted: unknown.")
class ProfileInput:
    given_name: str | None = strawberry.field(default=None, description="First name.")
    family_name: str | None = strawberry.field(default=None, description="Last name.")
    email: str | None = strawberry.field(default=None, description="Email address.")
    phone: str | None = strawberry.field(
        default=None, description="E.164, or national format read with the address country."
    )
    birth_date: date | None = strawberry.field(default=None, description="Date of birth.")
    address: AddressInput | None = strawberry.field(default=None, description="Postal address.")


def _given(source: Any, field: ProfileField) -> Any:
    """The value at ``field``'s place in an input; UNSET when a level above it is missing."""
    value = source
    for attribute in field.attributes:
        if value is None or value is UNSET:
            return UNSET
        value = getattr(value, attribute)
    return value.isoformat() if isinstance(value, date) else value


def _flat(profile: ProfileInput | None) -> dict[str, str | None]:
    if profile is None:
        return {}
    given = {field.name: _given(profile, field) for field in PROFILE}
    return {name: None if value is UNSET else value for name, value in given.items()}


@strawberry.input(description="A customer record from a source.")
class IngestCustomerInput:
    source: SourceInput = strawberry.field(description="Provenance and lawful basis.")
    profile: ProfileInput | None = strawberry.field(
        default=None, description="The values sent; invalid ones are refused one by one."
    )
    external_ids: list[str] = strawberry.field(
        default_factory=list, description="The person's ids in other systems, `system:id`."
    )
    lifecycle_stage: LifecycleStage | None = strawberry.field(
        default=None, description="The stage the source reports; omitted: unchanged (or LEAD)."
    )


class CustomerIngestOutcome(Enum):
    CREATED = "created"
    MATCHED = "matched"


describe_enum(
    CustomerIngestOutcome,
    "What an ingest did to the customer base.",
    {
        CustomerIngestOutcome.CREATED: "No customer matched: a new one was created.",
        CustomerIngestOutcome.MATCHED: "An existing customer matched and was updated.",
    },
)


@strawberry.type(description="The record was stored. Refused values are listed in `issues`.")
class CustomerIngested:
    customer_id: strawberry.ID = strawberry.field(description="The customer's global id.")
    outcome: CustomerIngestOutcome = strawberry.field(description="Created or matched.")
    matched_rule: str | None = strawberry.field(
        description="The identifier that matched: `external_id:<system>`, `email` or `phone`; "
        "null when created."
    )
    source_record_id: strawberry.ID = strawberry.field(
        description="Global id of the SourceRecord kept as provenance."
    )
    issues: list[FieldIssue] = strawberry.field(
        description="Values kept out of the profile, and identifiers not attached, with reasons."
    )
    replayed: bool = strawberry.field(description="True when this repeats an earlier call.")

    @strawberry.field(
        description="The customer as it is now (the ingest role cannot read customers: ask "
        "for `customerId` instead).",
        extensions=allow(*READERS),
    )
    async def customer(self, info: Info[Any, Any]) -> CustomerNode | None:
        key = parse_id(self.customer_id, "customerId", "Customer")
        return (await customer_nodes(info, [key]))[0]


INGEST_CUSTOMER = Outcomes(
    "IngestCustomerResult",
    CustomerIngested,
    {
        ValidationError: "the record breaks a rule (every problem listed in `issues`), names "
        "an erased person (SUPPRESSED) or a restricted one (PROCESSING_RESTRICTED), or the "
        "idempotencyKey is malformed",
        ConflictError: KEY_CONFLICT,
    },
)
IngestCustomerResult = Annotated[
    CustomerIngested | ValidationError | ConflictError, INGEST_CUSTOMER.marker
]


@strawberry.input(description="Omit a field to keep it, send null to clear it.")
class AddressChangesInput:
    line1: str | None = strawberry.field(default=UNSET, description="Street and number.")
    line2: str | None = strawberry.field(default=UNSET, description="Flat, floor, building.")
    city: str | None = strawberry.field(default=UNSET, description="City or town.")
    region: str | None = strawberry.field(
        default=UNSET, description="Region, state or province (name or ISO 3166-2 code)."
    )
    postal_code: str | None = strawberry.field(default=UNSET, description="Postal code.")
    country: str | None = strawberry.field(default=UNSET, description="Code or English name.")


@strawberry.input(description="Omit a field to keep it, send null to clear it.")
class ProfileChangesInput:
    given_name: str | None = strawberry.field(default=UNSET, description="First name.")
    family_name: str | None = strawberry.field(default=UNSET, description="Last name.")
    email: str | None = strawberry.field(default=UNSET, description="Email address.")
    phone: str | None = strawberry.field(
        default=UNSET, description="E.164, or national format read with the address country."
    )
    birth_date: date | None = strawberry.field(default=UNSET, description="Date of birth.")
    address: AddressChangesInput | None = strawberry.field(
        default=UNSET, description="Postal address changes (null clears the whole address)."
    )


@strawberry.input(description="A rectification (GDPR Art. 16): omitted fields keep their value.")
class UpdateCustomerInput:
    id: strawberry.ID = strawberry.field(description="The customer's global id.")
    changes: ProfileChangesInput | None = strawberry.field(
        default=UNSET, description="Profile changes: omit a field to keep it, null clears it."
    )
    lifecycle_stage: LifecycleStage | None = strawberry.field(
        default=UNSET, description="The new stage (a stage cannot be cleared: omit to keep)."
    )


def profile_changes(given: ProfileChangesInput | None) -> dict[str, str | None]:
    """The fields the input names (omitted: keep; null: clear), by profile field name. A null
    address clears every part of it."""
    if given is None or given is UNSET:
        return {}
    changes: dict[str, str | None] = {}
    for field in PROFILE:
        if field.attributes[0] == "address" and given.address is None:
            changes[field.name] = None
            continue
        value = _given(given, field)
        if value is not UNSET:
            changes[field.name] = value
    return changes


@strawberry.type(description="The customer after the rectification.")
class CustomerUpdated:
    customer: CustomerNode = strawberry.field(description="The customer as changed.")


UPDATE_CUSTOMER = Outcomes(
    "UpdateCustomerResult",
    CustomerUpdated,
    {
        ValidationError: "a value breaks a rule, clears what cannot be cleared, belongs to "
        "another customer (IDENTITY_CONFLICT), nothing is changed, or the id is malformed",
        NotFoundError: "no customer has this id (or it was erased)",
    },
)
UpdateCustomerResult = Annotated[
    CustomerUpdated | ValidationError | NotFoundError, UPDATE_CUSTOMER.marker
]


@strawberry.input(description="Tell the customer before lifting (GDPR Art. 18(3)).")
class LiftCustomerRestrictionInput:
    customer_id: strawberry.ID = strawberry.field(description="The customer's global id.")
    reason: str = strawberry.field(description="Why (at most 500 characters; audited).")


@strawberry.type(description="The customer's data may be processed again.")
class CustomerRestrictionLifted:
    customer: CustomerNode = strawberry.field(description="The customer, no longer restricted.")


LIFT_CUSTOMER_RESTRICTION = Outcomes(
    "LiftCustomerRestrictionResult",
    CustomerRestrictionLifted,
    {
        ValidationError: "the reason is missing or too long, or the id is malformed",
        NotFoundError: "no customer has this id (or it was erased)",
        InvalidStateError: "the customer's processing is not restricted",
    },
)
LiftCustomerRestrictionResult = Annotated[
    CustomerRestrictionLifted | ValidationError | NotFoundError | InvalidStateError,
    LIFT_CUSTOMER_RESTRICTION.marker,
]


async def _shown(info: Info[Any, Any], customer_id: uuid.UUID, field: str) -> CustomerNode:
    """The changed customer as the payload's selection asks for it (read and audited)."""
    node = (await customer_nodes(info, [customer_id], below="customer."))[0]
    if node is None:  # erased by another request in between
        raise NotFound("No customer has this id.", field=field)
    return node


@strawberry.type
class CustomerMutation:
    @strawberry.mutation(
        description=INGEST_CUSTOMER.describe(
            "Add or update a customer from a source; idempotent with idempotencyKey."
        ),
        extensions=allow(*INGESTERS, personal=True),
    )
    @errors_as_data
    async def ingest_customer(
        self,
        info: Info[Any, Any],
        input: Annotated[IngestCustomerInput, strawberry.argument(description="The record.")],
        idempotency_key: Annotated[
            str | None, strawberry.argument(description=IDEMPOTENCY_KEY)
        ] = None,
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
            customer_id=global_id("Customer", result.customer_id),
            outcome=CustomerIngestOutcome(result.outcome.value),
            matched_rule=result.matched_rule,
            source_record_id=global_id("SourceRecord", result.source_record_id),
            issues=issues_of(result.issues),
            replayed=done.replayed,
        )

    @strawberry.mutation(
        description=INGEST_EVENTS.describe(
            f"Store up to {event_service.MAX_BATCH:,} interaction events; each gets its own "
            "status. Idempotent with idempotencyKey."
        ),
        extensions=allow(*INGESTERS, personal=True),
    )
    @errors_as_data
    async def ingest_events(
        self,
        info: Info[Any, Any],
        input: Annotated[IngestEventsInput, strawberry.argument(description="The batch.")],
        idempotency_key: Annotated[
            str | None, strawberry.argument(description=IDEMPOTENCY_KEY)
        ] = None,
    ) -> IngestEventsResult:
        return await ingest_batch(info, input.events, idempotency_key)

    @strawberry.mutation(
        description=UPDATE_CUSTOMER.describe(
            "Rectify a customer's profile (staff corrections outrank every source)."
        ),
        extensions=allow(*RECTIFIERS, personal=True),
    )
    @errors_as_data
    async def update_customer(
        self,
        info: Info[Any, Any],
        input: Annotated[UpdateCustomerInput, strawberry.argument(description="The changes.")],
    ) -> UpdateCustomerResult:
        actor = await require_principal(info)
        customer_id = parse_id(input.id, "input.id", "Customer")
        given = Changes()
        given.kept(input.changes, "input.changes")
        stage = given.kept(input.lifecycle_stage, "input.lifecycleStage")
        given.check()
        row = await service.update_customer(
            actor,
            info.context.vault,
            customer_id,
            profile_changes(input.changes),
            lifecycle_stage=stage,
            trust=trust_table(info.context.settings.source_trust),
        )
        return CustomerUpdated(customer=await _shown(info, row.id, "input.id"))

    @strawberry.mutation(
        description=LIFT_CUSTOMER_RESTRICTION.describe(
            "Let a restricted customer's data be processed again."
        ),
        extensions=allow(Role.ADMIN, Role.PRIVACY_OFFICER, personal=True),
    )
    @errors_as_data
    async def lift_customer_restriction(
        self,
        info: Info[Any, Any],
        input: Annotated[
            LiftCustomerRestrictionInput, strawberry.argument(description="The customer.")
        ],
    ) -> LiftCustomerRestrictionResult:
        actor = await require_principal(info)
        row = await rights.lift_restriction(
            actor, parse_id(input.customer_id, "input.customerId", "Customer"), input.reason
        )
        return CustomerRestrictionLifted(customer=await _shown(info, row.id, "input.customerId"))
