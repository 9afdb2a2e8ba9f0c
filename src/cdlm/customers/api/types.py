"""GraphQL types of the customer 360."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types.info import Info

from cdlm.consent import loaders as consent_loaders
from cdlm.consent.api import ConsentStatus
from cdlm.core import clock
from cdlm.core.errors import ErrorCode, ValidationFailed
from cdlm.core.personal_data import PersonalData
from cdlm.core.roles import Role
from cdlm.customers import loaders
from cdlm.customers.models import Customer
from cdlm.graphql.masking import personal
from cdlm.graphql.pagination import (
    Connection,
    Edge,
    PageInfo,
    SortKey,
    check_page_size,
    decode_cursor,
    encode_cursor,
)
from cdlm.graphql.permissions import allow
from cdlm.graphql.vocabulary import IdentifierKind, LawfulBasis, LifecycleStage, SourceKind
from cdlm.quality import score as quality

if TYPE_CHECKING:
    from cdlm.matching.api import CustomerMerge

#: Who sees which profiles were merged into a customer (integration: not agents).
MERGE_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST)
EVENT_ORDER = [SortKey("occurred_at", descending=True), SortKey("id", descending=True)]


async def _key(info: Info[Any, Any], customer_id: uuid.UUID) -> bytes | None:
    context = info.context
    key: bytes | None = await context.loaders.get(
        loaders.data_keys_by_customer, context.vault
    ).load(customer_id)
    return key


@strawberry.type(description="A postal address.")
class Address:
    line1: str | None = strawberry.field(extensions=personal(PersonalData.ADDRESS))
    line2: str | None = strawberry.field(extensions=personal(PersonalData.ADDRESS))
    city: str | None = strawberry.field(extensions=personal(PersonalData.ADDRESS))
    region: str | None = strawberry.field(
        description="ISO 3166-2 code when recognised.", extensions=personal(PersonalData.ADDRESS)
    )
    postal_code: str | None = strawberry.field(extensions=personal(PersonalData.ADDRESS))
    country: str | None = strawberry.field(
        description="ISO 3166-1 alpha-2 code.", extensions=personal(PersonalData.ADDRESS)
    )


@strawberry.type(description="The surviving profile values (decrypted for this request).")
class CustomerProfile:
    given_name: str | None = strawberry.field(extensions=personal(PersonalData.NAME))
    family_name: str | None = strawberry.field(extensions=personal(PersonalData.NAME))
    email: str | None = strawberry.field(extensions=personal(PersonalData.EMAIL))
    phone: str | None = strawberry.field(
        description="E.164.", extensions=personal(PersonalData.PHONE)
    )
    birth_date: str | None = strawberry.field(
        description="YYYY-MM-DD.", extensions=personal(PersonalData.BIRTH_DATE)
    )
    address: Address

    @classmethod
    def from_values(cls, values: dict[str, str]) -> CustomerProfile:
        return cls(
            given_name=values.get("given_name"),
            family_name=values.get("family_name"),
            email=values.get("email"),
            phone=values.get("phone"),
            birth_date=values.get("birth_date"),
            address=Address(
                line1=values.get("address_line1"),
                line2=values.get("address_line2"),
                city=values.get("city"),
                region=values.get("region"),
                postal_code=values.get("postal_code"),
                country=values.get("country"),
            ),
        )


@strawberry.type(description="One identifier of the customer.")
class CustomerIdentity:
    kind: IdentifierKind
    namespace: str = strawberry.field(description="Source system of an external id; else empty.")
    value: str | None = strawberry.field(extensions=personal(PersonalData.IDENTIFIER))
    created_at: datetime


@strawberry.type(description="Which source record supplied a profile field's current value.")
class LineageEntry:
    field: str
    source_record_id: strawberry.ID
    source_system: str
    source_kind: str
    collected_at: datetime
    trust: int
    cleared: bool


@strawberry.type(description="A value refused by validation, kept out of the profile.")
class InvalidValueNode:
    field: str
    code: ErrorCode
    message: str
    value: str | None = strawberry.field(extensions=personal(PersonalData.FREE_TEXT))
    created_at: datetime


@strawberry.type(description="How good the profile is; each part between 0 and 1.")
class CustomerQuality:
    completeness: float
    validity: float
    freshness: float = strawberry.field(description="Computed now from the last source update.")
    score: float
    stored_score: float = strawberry.field(
        description="The score as of the last change (what `customers(qualityBelow:)` filters on)."
    )
    customer_id: strawberry.Private[uuid.UUID]

    @strawberry.field(description="Refused values not yet replaced by a valid one.")
    async def invalid_values(self, info: Info[Any, Any]) -> list[InvalidValueNode]:
        rows = await info.context.loaders.get(loaders.invalid_values_by_customer).load(
            self.customer_id
        )
        key = await _key(info, self.customer_id)
        vault = info.context.vault
        return [
            InvalidValueNode(
                field=row.field,
                code=ErrorCode(row.code),
                message=row.message,
                value=(
                    vault.open(key, self.customer_id, f"invalid:{row.field}", row.value_sealed)
                    if key
                    else None
                ),
                created_at=row.created_at,
            )
            for row in rows
        ]


@strawberry.type(description="What a source sent, with its provenance (values not shown).")
class SourceRecordNode:
    id: strawberry.ID
    source_system: str
    source_kind: SourceKind
    collected_at: datetime
    received_at: datetime
    lawful_basis: LawfulBasis
    purpose: str
    outcome: str
    matched_rule: str | None


@strawberry.type(description="An interaction.")
class EventNode:
    id: strawberry.ID
    type: str
    channel: str
    occurred_at: datetime
    received_at: datetime
    amount: Decimal | None
    currency: str | None
    source_system: str
    external_id: str | None
    properties: JSON | None = strawberry.field(extensions=personal(PersonalData.FREE_TEXT))


def _event_connection(
    rows: list[dict[str, Any]], first: int, after: str | None, key: bytes | None, vault: Any
) -> Connection[EventNode]:
    edges = []
    for row in rows[:first]:
        sealed = row["properties_sealed"]
        properties = (
            vault.open(key, row["customer_id"], "event-properties", sealed)
            if sealed is not None and key is not None
            else None
        )
        node = EventNode(
            id=strawberry.ID(str(row["id"])),
            type=row["type"],
            channel=row["channel"],
            occurred_at=row["occurred_at"],
            received_at=row["received_at"],
            amount=row["amount"],
            currency=row["currency"],
            source_system=row["source_system"],
            external_id=row["external_id"],
            properties=properties,
        )
        edges.append(
            Edge(node=node, cursor=encode_cursor(EVENT_ORDER, [row["occurred_at"], row["id"]]))
        )
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=len(rows) > first,
            has_previous_page=after is not None,
            start_cursor=edges[0].cursor if edges else None,
            end_cursor=edges[-1].cursor if edges else None,
        ),
    )


@strawberry.type(description="One person: profile, identities, events, lineage and quality.")
class CustomerNode:
    id: strawberry.ID
    created_at: datetime
    updated_at: datetime
    lifecycle_stage: LifecycleStage
    source_systems: list[str]
    last_activity_at: datetime | None
    restricted_at: datetime | None = strawberry.field(
        description="Processing restricted (GDPR Art. 18) since: stored, not processed."
    )
    row: strawberry.Private[Customer]

    @classmethod
    def from_row(cls, row: Customer) -> CustomerNode:
        return cls(
            id=strawberry.ID(str(row.id)),
            created_at=row.created_at,
            updated_at=row.updated_at,
            lifecycle_stage=row.lifecycle_stage,
            source_systems=list(row.source_systems),
            last_activity_at=row.last_activity_at,
            restricted_at=row.restricted_at,
            row=row,
        )

    @strawberry.field(description="The surviving profile values.")
    async def profile(self, info: Info[Any, Any]) -> CustomerProfile:
        key = await _key(info, self.row.id)
        if key is None:
            return CustomerProfile.from_values({})
        values = info.context.vault.open(key, self.row.id, "profile", self.row.profile_sealed)
        return CustomerProfile.from_values(values)

    @strawberry.field(description="Identifiers that resolve to this customer.")
    async def identities(self, info: Info[Any, Any]) -> list[CustomerIdentity]:
        rows = await info.context.loaders.get(loaders.identities_by_customer).load(self.row.id)
        key = await _key(info, self.row.id)
        vault = info.context.vault
        return [
            CustomerIdentity(
                kind=row.kind,
                namespace=row.namespace,
                value=vault.open(key, self.row.id, "identity", row.value_sealed) if key else None,
                created_at=row.created_at,
            )
            for row in rows
        ]

    @strawberry.field(description="Per profile field, the source record behind its value.")
    def lineage(self) -> list[LineageEntry]:
        return [
            LineageEntry(
                field=name,
                source_record_id=strawberry.ID(str(entry["source_record_id"])),
                source_system=str(entry["source_system"]),
                source_kind=str(entry["source_kind"]),
                collected_at=datetime.fromisoformat(str(entry["collected_at"])),
                trust=int(entry["trust"]),
                cleared=bool(entry.get("cleared", False)),
            )
            for name, entry in sorted(self.row.lineage.items())
        ]

    @strawberry.field(description="Completeness, validity, freshness and refused values.")
    def quality(self) -> CustomerQuality:
        last = max(
            (datetime.fromisoformat(str(e["collected_at"])) for e in self.row.lineage.values()),
            default=None,
        )
        fresh = quality.freshness(last, clock.now())
        weights = quality.WEIGHTS
        return CustomerQuality(
            completeness=self.row.completeness,
            validity=self.row.validity,
            freshness=fresh,
            score=round(
                weights["completeness"] * self.row.completeness
                + weights["validity"] * self.row.validity
                + weights["freshness"] * fresh,
                4,
            ),
            stored_score=self.row.quality_score,
            customer_id=self.row.id,
        )

    @strawberry.field(description="Source records this profile was built from, newest first.")
    async def sources(self, info: Info[Any, Any]) -> list[SourceRecordNode]:
        rows = await info.context.loaders.get(loaders.source_records_by_customer).load(self.row.id)
        return [
            SourceRecordNode(
                id=strawberry.ID(str(row.id)),
                source_system=row.source_system,
                source_kind=row.source_kind,
                collected_at=row.collected_at,
                received_at=row.received_at,
                lawful_basis=row.lawful_basis,
                purpose=row.purpose,
                outcome=row.outcome,
                matched_rule=row.matched_rule,
            )
            for row in rows
        ]

    @strawberry.field(
        description="Per purpose: may the customer's data be used (the same answer as "
        "mayProcess: decisions, the purpose's rules and restriction), and why.",
        extensions=allow(Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.AGENT),
    )
    async def consents(self, info: Info[Any, Any]) -> list[ConsentStatus]:
        found = await info.context.loaders.get(consent_loaders.consents_by_customer).load(self.row)
        return [ConsentStatus.of(answer) for answer in found]

    @strawberry.field(
        description="Ids of the profiles merged into this one (each answers with this profile).",
        extensions=allow(*MERGE_READERS),
    )
    async def merged_from(self, info: Info[Any, Any]) -> list[strawberry.ID]:
        ids = await info.context.loaders.get(loaders.absorbed_by_customer).load(self.row.id)
        return [strawberry.ID(str(i)) for i in ids]

    @strawberry.field(
        description="Every merge and unmerge this profile took part in, oldest first.",
        extensions=allow(*MERGE_READERS),
    )
    async def merge_history(
        self, info: Info[Any, Any]
    ) -> list[Annotated[CustomerMerge, strawberry.lazy("cdlm.matching.api")]]:
        from cdlm.matching.api import CustomerMerge as Shown
        from cdlm.matching.loaders import merges_by_customer

        rows = await info.context.loaders.get(merges_by_customer).load(self.row.id)
        return [Shown.from_row(row) for row in rows]

    @strawberry.field(description="Interactions, newest first.")
    async def events(
        self,
        info: Info[Any, Any],
        first: int | None = None,
        after: str | None = None,
        type: str | None = None,
        occurred_from: datetime | None = None,
        occurred_to: datetime | None = None,
    ) -> Connection[EventNode]:
        size = check_page_size(first)
        position = None
        if after is not None:
            at, event_id = decode_cursor(after, EVENT_ORDER)
            if (
                not isinstance(at, datetime)
                or at.tzinfo is None
                or not isinstance(event_id, uuid.UUID)
            ):
                raise ValidationFailed(
                    "The cursor is not valid for this list.",
                    field="after",
                    code=ErrorCode.INVALID_CURSOR,
                )
            position = (at, event_id)
        window = loaders.EventWindow(size, position, type, occurred_from, occurred_to)
        rows = await info.context.loaders.get(loaders.events_by_customer).load(
            (self.row.id, window)
        )
        key = await _key(info, self.row.id)
        return _event_connection(rows, size, after, key, info.context.vault)
