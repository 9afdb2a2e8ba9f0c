"""GraphQL types of the customer 360."""

import functools
import uuid
from collections.abc import Callable
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.scalars import JSON
from strawberry.types.info import Info

from cdlm.analytics.recommendations import api as personalization
from cdlm.consent.api import ConsentStatus
from cdlm.core import clock, periods
from cdlm.core.errors import ErrorCode, ValidationFailed
from cdlm.core.personal_data import MASKERS, PersonalData, present, sees_in_clear
from cdlm.core.roles import Role
from cdlm.customer360 import reader
from cdlm.customer360.values import (
    CustomerRecord,
    EventValue,
    EventWindow,
    IdentityValue,
    Parts,
    Profile360,
)
from cdlm.customers import loaders
from cdlm.customers.api.analytics import ANALYTICS_READERS, CustomerAnalytics
from cdlm.graphql.enums import describe_enum
from cdlm.graphql.masking import mask, masked_field, personal
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
from cdlm.graphql.permissions import allow
from cdlm.graphql.relay import Node, global_id
from cdlm.graphql.vocabulary import IdentifierKind, LawfulBasis, LifecycleStage, SourceKind
from cdlm.quality import score as quality
from cdlm.quality.fields import BY_NAME, PROFILE
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import Vault

if TYPE_CHECKING:
    from cdlm.analytics.journeys.api import JourneyStepConnection
    from cdlm.matching.api import CustomerMerge

#: Who sees which profiles were merged into a customer (integration: not agents).
MERGE_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST)
#: Who sees a customer's consent answers (not analysts, who work on aggregates).
CONSENT_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.AGENT)
EVENT_ORDER = [SortKey("occurred_at", descending=True), SortKey("id", descending=True)]


async def _key(info: Info[Any, Any], customer_id: uuid.UUID) -> bytes | None:
    context = info.context
    key: bytes | None = await context.loaders.get(
        loaders.data_keys_by_customer, context.vault
    ).load(customer_id)
    return key


@strawberry.type(description="A postal address; null parts are unknown.")
class Address:
    line1: str | None = masked_field(PersonalData.ADDRESS, "Street and number.")
    line2: str | None = masked_field(PersonalData.ADDRESS, "Flat, floor, building.")
    city: str | None = masked_field(PersonalData.ADDRESS, "City or town.")
    region: str | None = masked_field(PersonalData.ADDRESS, "ISO 3166-2 code when recognised.")
    postal_code: str | None = masked_field(
        PersonalData.ADDRESS, "Postal code, normalized for its country."
    )
    country: str | None = masked_field(PersonalData.ADDRESS, "ISO 3166-1 alpha-2 code.")


@strawberry.type(
    description="The surviving profile values (decrypted for this request); null: unknown."
)
class CustomerProfile:
    given_name: str | None = masked_field(PersonalData.NAME, "First name.")
    family_name: str | None = masked_field(PersonalData.NAME, "Last name.")
    email: str | None = masked_field(PersonalData.EMAIL, "Lower-cased email address.")
    phone: str | None = masked_field(PersonalData.PHONE, "E.164.")
    birth_date: date | None = masked_field(
        PersonalData.BIRTH_DATE, "A date has no partial view: null for roles that see it masked."
    )
    address: Address = strawberry.field(description="The postal address.")

    @classmethod
    def from_values(cls, values: dict[str, str], role: Role | None) -> "CustomerProfile":
        """The profile as ``role`` may see it (each value in clear or masked by its kind)."""
        shown: dict[str, dict[str, Any]] = {"": {}, "address": {}}
        for parent, attribute, name, masker in _profile_view(role):
            value = values.get(name)
            shown[parent][attribute] = masker(value) if masker and value is not None else value
        birth = shown[""].get("birth_date")
        # A date has no masked form: a masked birth date is withheld.
        shown[""]["birth_date"] = _date(birth) if birth and not _masks_birth_date(role) else None
        return cls(**shown[""], address=Address(**shown["address"]))


def _date(value: str) -> date | None:
    try:
        return date.fromisoformat(value)
    except ValueError:  # not a calendar date: never stored so, shown as unknown
        return None


def _masks_birth_date(role: Role | None) -> bool:
    return not sees_in_clear(role, PersonalData.BIRTH_DATE)


@functools.cache
def _profile_view(
    role: Role | None,
) -> tuple[tuple[str, str, str, Callable[[str], str] | None], ...]:
    """Per profile field: where it sits, its name, and how ``role`` sees it (None: in clear)."""
    return tuple(
        (
            "".join(field.attributes[:-1]),
            field.attributes[-1],
            field.name,
            None if sees_in_clear(role, field.kind) else MASKERS[field.kind],
        )
        for field in PROFILE
    )


@strawberry.type(description="One identifier that resolves to the customer.")
class CustomerIdentity:
    kind: IdentifierKind = strawberry.field(description="What kind of identifier it is.")
    namespace: str = strawberry.field(description="Source system of an external id; else empty.")
    value: str | None = masked_field(
        PersonalData.IDENTIFIER, "The normalized identifier (lower-cased email, E.164 phone)."
    )
    created_at: datetime = strawberry.field(description="When it was attached.")

    @classmethod
    def of(cls, identity: IdentityValue, role: Role | None) -> "CustomerIdentity":
        return cls(
            kind=identity.kind,
            namespace=identity.namespace,
            value=present(identity.value, PersonalData.IDENTIFIER, role),
            created_at=identity.created_at,
        )


def profile_path(name: str) -> str:
    """The API path below a customer of the profile field ``name`` (``profile.email``)."""
    field = BY_NAME.get(name)
    return f"profile.{field.api_path}" if field is not None else name


@strawberry.type(description="Which source record supplied a profile field's current value.")
class LineageEntry:
    field: str = strawberry.field(
        description="The field's path below the customer, e.g. `profile.address.postalCode`."
    )
    source_record_id: strawberry.ID = strawberry.field(
        description="Global id of the SourceRecord (see `Customer.sources`)."
    )
    source_system: str = strawberry.field(description="The system that sent the value.")
    source_kind: SourceKind = strawberry.field(description="The kind of touchpoint.")
    collected_at: datetime = strawberry.field(description="When the source collected it.")
    trust: int = strawberry.field(
        description="The source kind's trust (higher wins; staff corrections outrank all)."
    )
    cleared: bool = strawberry.field(description="True when the value was cleared (now null).")


@strawberry.type(
    name="InvalidValue", description="A value refused by validation, kept out of the profile."
)
class InvalidValueNode:
    field: str = strawberry.field(
        description="The field's path below the customer, e.g. `profile.email`."
    )
    code: ErrorCode = strawberry.field(description="Why it was refused.")
    message: str = strawberry.field(description="Why it was refused, for people.")
    value: str | None = strawberry.field(
        description="The refused value.", extensions=personal(PersonalData.FREE_TEXT)
    )
    created_at: datetime = strawberry.field(description="When it was refused.")


@strawberry.type(description="How good the profile is; each part between 0 and 1.")
class CustomerQuality:
    completeness: float = strawberry.field(description="Share of the expected fields present.")
    validity: float = strawberry.field(description="Share of the values sent that were valid.")
    freshness: float = strawberry.field(description="Computed now from the last source update.")
    score: float = strawberry.field(description="The parts combined, as of now.")
    stored_score: float = strawberry.field(
        description="The score as of the last change (what `customers(filter: {qualityBelow})` "
        "filters on)."
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
                field=profile_path(row.field),
                code=ErrorCode(row.code),
                message=row.message,
                value=(
                    vault.open(
                        key, self.customer_id, sealed_for.invalid_value(row.field), row.value_sealed
                    )
                    if key
                    else None
                ),
                created_at=row.created_at,
            )
            for row in rows
        ]


class SourceRecordOutcome(Enum):
    CREATED = "created"
    MATCHED = "matched"
    RECTIFIED = "rectified"


describe_enum(
    SourceRecordOutcome,
    "What a source record did to the customer base.",
    {
        SourceRecordOutcome.CREATED: "It created the customer.",
        SourceRecordOutcome.MATCHED: "It matched an existing customer and updated the profile.",
        SourceRecordOutcome.RECTIFIED: "A staff correction (GDPR Art. 16).",
    },
)


@strawberry.type(
    name="SourceRecord", description="What a source sent, with its provenance (values not shown)."
)
class SourceRecordNode(Node):
    source_system: str = strawberry.field(description="The system that sent it, e.g. crm.")
    source_kind: SourceKind = strawberry.field(description="The kind of touchpoint.")
    collected_at: datetime = strawberry.field(description="When the source collected the data.")
    received_at: datetime = strawberry.field(description="When cdlm received it.")
    lawful_basis: LawfulBasis = strawberry.field(
        description="The lawful basis the source declared."
    )
    purpose: str = strawberry.field(description="The purpose code the source declared.")
    outcome: SourceRecordOutcome = strawberry.field(description="What it did.")
    matched_rule: str | None = strawberry.field(
        description="The identifier that matched (`external_id:<system>`, `email`, `phone`); "
        "null when it created the customer or is a correction."
    )

    @classmethod
    def from_row(cls, row: Any) -> "SourceRecordNode":
        """The record as shown (no values: those are in the profile and its lineage)."""
        return cls(
            id=global_id("SourceRecord", row.id),
            source_system=row.source_system,
            source_kind=row.source_kind,
            collected_at=row.collected_at,
            received_at=row.received_at,
            lawful_basis=row.lawful_basis,
            purpose=row.purpose,
            outcome=SourceRecordOutcome(row.outcome),
            matched_rule=row.matched_rule,
        )


@strawberry.type(name="Event", description="An interaction of the customer with the business.")
class EventNode(Node):
    type: str = strawberry.field(description="Event type code, e.g. order.placed.")
    channel: str = strawberry.field(description="Channel code, e.g. web, store, email.")
    occurred_at: datetime = strawberry.field(description="When it happened.")
    received_at: datetime = strawberry.field(description="When cdlm received it.")
    amount: Decimal | None = strawberry.field(description="Money involved, in `currency`.")
    currency: str | None = strawberry.field(description="ISO 4217 code of `amount`.")
    source_system: str = strawberry.field(description="The system that sent it.")
    external_id: str | None = strawberry.field(description="The source's own id of the event.")
    item_id: str | None = strawberry.field(
        description="The product or content id read from the properties as the event was "
        "stored (their first `itemId`, `productId`, `sku` or `contentId` by default); null: "
        "the event names no item."
    )
    properties: JSON | None = masked_field(
        PersonalData.FREE_TEXT, "Free-form JSON object sent with the event (stored encrypted)."
    )
    sentiment: float | None = strawberry.field(
        description="Feedback events: VADER compound sentiment of the event's text, -1 (most "
        "negative) to 1 (most positive); positive from 0.05, negative from -0.05. English "
        "lexicon. Computed at ingestion and kept in clear (the text stays encrypted); null: "
        "not a feedback event or no text."
    )
    nps: int | None = strawberry.field(
        description="Feedback events: the Net Promoter answer, 0 to 10; null: none given."
    )
    csat: int | None = strawberry.field(
        description="Feedback events: the satisfaction answer, 1 to 5; null: none given."
    )

    @classmethod
    def of(cls, event: EventValue, role: Role | None) -> "EventNode":
        return cls(
            id=global_id("Event", event.id),
            type=event.type,
            channel=event.channel,
            occurred_at=event.occurred_at,
            received_at=event.received_at,
            amount=event.amount,
            currency=event.currency,
            source_system=event.source_system,
            external_id=event.external_id,
            item_id=event.item_id,
            properties=mask(event.properties, PersonalData.FREE_TEXT, role),
            sentiment=event.sentiment,
            nps=event.nps,
            csat=event.csat,
        )


@strawberry.input(description="Which events to list; every criterion is optional (AND).")
class EventFilter:
    type: str | None = strawberry.field(
        default=None, description="Only events of this type code, e.g. order.placed."
    )
    occurred_from: datetime | None = strawberry.field(
        default=None,
        description="Only events that happened at or after this moment (with a time zone).",
    )
    occurred_to: datetime | None = strawberry.field(
        default=None, description="Only events that happened before this moment (with a time zone)."
    )


def _event_position(cursor: str | None, field: str) -> tuple[datetime, uuid.UUID] | None:
    if cursor is None:
        return None
    at, event_id = decode_cursor(cursor, EVENT_ORDER, field)
    if not isinstance(at, datetime) or at.tzinfo is None or not isinstance(event_id, uuid.UUID):
        raise ValidationFailed(
            "The cursor is not valid for this list.", field=field, code=ErrorCode.INVALID_CURSOR
        )
    return at, event_id


def utc_moment(moment: datetime | None, field: str) -> datetime | None:
    """A moment argument in UTC (None stays None), refused on ``field`` as
    :func:`cdlm.core.periods.in_utc` says (no time zone, out of range once in UTC)."""
    return None if moment is None else periods.in_utc(moment, field)


def event_window(filter: EventFilter | None, page: PageArgs) -> EventWindow:
    """The page of events the ``events`` arguments ask for (bad sizes, cursors and moments
    refused)."""
    given = filter or EventFilter()
    return EventWindow(
        page.size(),
        _event_position(page.after, "after"),
        given.type,
        utc_moment(given.occurred_from, "filter.occurredFrom"),
        utc_moment(given.occurred_to, "filter.occurredTo"),
        before=_event_position(page.before, "before"),
        backwards=page.backwards,
    )


def _event_cursor(event: EventValue) -> str:
    return encode_cursor(EVENT_ORDER, [event.occurred_at, event.id])


def event_connection(
    events: list[EventValue], window: EventWindow, role: Role | None
) -> Connection[EventNode]:
    """A page of events (``events`` holds up to one more than the page, in the order read, to
    tell if more follow)."""
    more = len(events) > window.first
    shown = events[: window.first]
    if window.backwards:
        shown.reverse()
    edges = [
        Edge(node=EventNode.of(event, role), make_cursor=functools.partial(_event_cursor, event))
        for event in shown
    ]
    return Connection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=window.before is not None if window.backwards else more,
            has_previous_page=more if window.backwards else window.after is not None,
            start_cursor=_event_cursor(shown[0]) if shown else None,
            end_cursor=_event_cursor(shown[-1]) if shown else None,
        ),
    )


@strawberry.type(
    name="Customer", description="One person: profile, identities, events, lineage and quality."
)
class CustomerNode(Node):
    created_at: datetime = strawberry.field(description="When cdlm first heard of the person.")
    updated_at: datetime = strawberry.field(description="When the profile last changed.")
    lifecycle_stage: LifecycleStage = strawberry.field(
        description="Where the customer is in the relationship."
    )
    source_systems: list[str] = strawberry.field(
        description="Every system that sent data about the customer."
    )
    last_activity_at: datetime | None = strawberry.field(
        description="When the newest event happened; null: none yet."
    )
    restricted_at: datetime | None = strawberry.field(
        description="Processing restricted (GDPR Art. 18) since: stored, not processed."
    )
    read: strawberry.Private[Profile360]
    role: strawberry.Private[Role | None]
    vault: strawberry.Private[Vault]

    @classmethod
    def of(cls, read: Profile360, role: Role | None, vault: Vault) -> "CustomerNode":
        """The customer as ``role`` may see it, from what the request read."""
        record = read.customer
        return cls(
            id=global_id("Customer", record.id),
            created_at=record.created_at,
            updated_at=record.updated_at,
            lifecycle_stage=record.lifecycle_stage,
            source_systems=record.source_systems,
            last_activity_at=record.last_activity_at,
            restricted_at=record.restricted_at,
            read=read,
            role=role,
            vault=vault,
        )

    @property
    def record(self) -> CustomerRecord:
        return self.read.customer

    def _missing(self, part: str) -> Exception:
        # Every CustomerNode is built by cdlm.customers.api.reading from the parts its
        # selection asked for; reaching here means that reading was bypassed.
        return RuntimeError(f"the customer's {part} were not read for this request")

    @strawberry.field(description="The surviving profile values.")
    def profile(self) -> CustomerProfile:
        if self.read.profile is None:
            raise self._missing("profile")
        return CustomerProfile.from_values(self.read.profile, self.role)

    @strawberry.field(description="Identifiers that resolve to this customer.")
    def identities(self) -> list[CustomerIdentity]:
        if self.read.identities is None:
            raise self._missing("identities")
        return [CustomerIdentity.of(i, self.role) for i in self.read.identities]

    @strawberry.field(description="Per profile field, the source record behind its value.")
    def lineage(self) -> list[LineageEntry]:
        return [
            LineageEntry(
                field=profile_path(name),
                source_record_id=global_id("SourceRecord", str(entry["source_record_id"])),
                source_system=str(entry["source_system"]),
                source_kind=SourceKind(str(entry["source_kind"])),
                collected_at=datetime.fromisoformat(str(entry["collected_at"])),
                trust=int(entry["trust"]),
                cleared=bool(entry.get("cleared", False)),
            )
            for name, entry in sorted(self.record.lineage.items())
        ]

    @strawberry.field(description="Completeness, validity, freshness and refused values.")
    def quality(self) -> CustomerQuality:
        record = self.record
        now = quality.current(record.completeness, record.validity, record.lineage, clock.now())
        return CustomerQuality(
            completeness=record.completeness,
            validity=record.validity,
            freshness=now.freshness,
            score=now.score,
            stored_score=record.quality_score,
            customer_id=record.id,
        )

    @strawberry.field(description="Source records this profile was built from, newest first.")
    async def sources(self, info: Info[Any, Any]) -> list[SourceRecordNode]:
        rows = await info.context.loaders.get(loaders.source_records_by_customer).load(
            self.record.id
        )
        return [SourceRecordNode.from_row(row) for row in rows]

    @strawberry.field(
        description="Per purpose: may the customer's data be used (the same answer as "
        "mayProcess: decisions, the purpose's rules and restriction), and why.",
        extensions=allow(*CONSENT_READERS),
    )
    def consents(self) -> list[ConsentStatus]:
        if self.read.consents is None:
            raise self._missing("consents")
        return [ConsentStatus.of(answer) for answer in self.read.consents]

    @strawberry.field(
        description="Global ids of the profiles merged into this one (each answers with this "
        "profile).",
        extensions=allow(*MERGE_READERS),
    )
    async def merged_from(self, info: Info[Any, Any]) -> list[strawberry.ID]:
        ids = await info.context.loaders.get(loaders.absorbed_by_customer).load(self.record.id)
        return [global_id("Customer", i) for i in ids]

    @strawberry.field(
        description="Every merge and unmerge this profile took part in, oldest first.",
        extensions=allow(*MERGE_READERS),
    )
    async def merge_history(
        self, info: Info[Any, Any]
    ) -> list[Annotated["CustomerMerge", strawberry.lazy("cdlm.matching.api")]]:
        from cdlm.matching.api import CustomerMerge as Shown
        from cdlm.matching.loaders import merges_by_customer

        rows = await info.context.loaders.get(merges_by_customer).load(self.record.id)
        return [Shown.from_row(row) for row in rows]

    @strawberry.field(
        description="What analysis says about the customer: RFM, lifetime value, churn risk "
        "and coarse attributes (never the personal values behind them).",
        extensions=allow(*ANALYTICS_READERS),
    )
    async def analytics(self, info: Info[Any, Any]) -> CustomerAnalytics:
        row = await info.context.loaders.get(loaders.attributes_by_customer).load(self.record.id)
        return CustomerAnalytics.of(row)

    @strawberry.field(
        description="Items the customer is likely to want next (item-to-item model of the "
        "daily analytics run), only when the personalization purpose permits: otherwise "
        "`permitted` is false and `refusal` says why.",
        extensions=allow(*ANALYTICS_READERS),
    )
    async def recommendations(
        self,
        info: Info[Any, Any],
        first: Annotated[
            int, strawberry.argument(description="How many items: 1 to 50 (default 10).")
        ] = 10,
    ) -> personalization.Recommendations:
        return await personalization.recommendations_of(info, self.record.id, first)

    @strawberry.field(
        description="What to do next with the customer (win back, retain, upsell, nurture), "
        "by fixed rules from the analytics scores, only when the personalization purpose "
        "permits: otherwise `permitted` is false and `refusal` says why.",
        extensions=allow(*ANALYTICS_READERS),
    )
    async def next_best_action(self, info: Info[Any, Any]) -> personalization.NextBestAction:
        return await personalization.next_best_action_of(info, self.record.id)

    @strawberry.field(description="Interactions, newest first.")
    def events(
        self,
        filter: Annotated[
            EventFilter | None, strawberry.argument(description="Which events to list.")
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> Connection[EventNode]:
        window = event_window(filter, PageArgs(first, after, last, before))
        events = self.read.events.get(window)
        if events is None:
            # Arguments the selection could not be read from ahead: read this page now (the
            # executor awaits what a resolver returns).
            return cast(Connection[EventNode], self._read_events(window))
        return event_connection(events, window, self.role)

    @strawberry.field(
        description="The customer's events as a path, oldest first (keyset pages on the "
        "time, then the event id), each with the seconds since the one before; the same "
        "events as `events`, for the same roles."
    )
    async def journey(
        self, info: Info[Any, Any], first: First = None, after: After = None
    ) -> Annotated["JourneyStepConnection", strawberry.lazy("cdlm.analytics.journeys.api")]:
        from cdlm.analytics.journeys.api import journey_connection

        return await journey_connection(info, self.record.id, first, after)

    async def _read_events(self, window: EventWindow) -> Connection[EventNode]:
        again = await reader.read(self.vault, [self.record.id], Parts(events=frozenset({window})))
        events = again[self.record.id].events[window] if self.record.id in again else []
        return event_connection(events, window, self.role)
