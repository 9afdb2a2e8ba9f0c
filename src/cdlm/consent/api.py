"""GraphQL API of consent: purposes, decisions, history, receipts and the ledger check."""

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types.info import Info

from cdlm.consent import loaders, service
from cdlm.consent.models import ConsentEntry, Decision, Mechanism, Method, Purpose
from cdlm.core.errors import ValidationFailed
from cdlm.core.roles import ALL_ROLES, OVERSIGHT_ROLES, Role
from cdlm.graphql.enums import describe_enum
from cdlm.graphql.errors import (
    ConflictError,
    NotFoundError,
    Outcomes,
    PolicyViolationError,
    UserError,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.hash_chain import HashChainReport
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
from cdlm.graphql.relay import Node, NodeKind, global_id, parse_id, rows_fetcher
from cdlm.graphql.updates import Changes
from cdlm.graphql.vocabulary import LawfulBasis
from cdlm.ledgers import verify as ledgers
from cdlm.ledgers.api import verification_report

if TYPE_CHECKING:
    from cdlm.customers.api.types import CustomerNode

describe_enum(
    Mechanism,
    "How consent works for a purpose, and so what applies before the person decides.",
    {
        Mechanism.OPT_IN: "Not processed until the person grants consent (every purpose "
        "resting on consent is opt-in).",
        Mechanism.OPT_OUT: "Processed until the person denies or withdraws (a purpose on "
        "another lawful basis that the person may refuse).",
        Mechanism.NOTICE_ONLY: "Processed on another lawful basis (contract, legal "
        "obligation...); the person is informed and can only object where the law allows.",
    },
    name="ConsentMechanism",
)
describe_enum(
    Decision,
    "A person's decision about a purpose.",
    {
        Decision.GRANTED: "The person agreed to the purpose.",
        Decision.DENIED: "The person refused the purpose (never having agreed).",
        Decision.WITHDRAWN: "The person took back an earlier agreement, or objected.",
    },
    name="ConsentDecision",
)
describe_enum(
    Method,
    "How a decision was captured. Clients send FORM, API, IMPORT or AGENT; cdlm itself "
    "records the others.",
    {
        Method.FORM: "The person used a consent form or preference centre; with evidence (user "
        "agent or IP address) it counts as the person's own action.",
        Method.API: "A system recorded it through the API.",
        Method.IMPORT: "Imported from another system (e.g. decisions made before cdlm).",
        Method.GPC: "A Global Privacy Control signal (recordGlobalPrivacyControl).",
        Method.AGENT: "A support agent recorded what the person said.",
        Method.REQUEST: "A data subject request (objection, opt-out of sale) recorded it.",
        Method.MERGE: "Two profiles of one person were merged: the most restrictive decision.",
        Method.UNMERGE: "A merge was undone: each profile's own decisions again.",
    },
    name="ConsentMethod",
)

#: Who manages the purposes catalog.
CATALOG = (Role.ADMIN, Role.PRIVACY_OFFICER)
#: Who records decisions (frontends with an ingest key, staff).
CAPTURERS = (Role.INGEST, Role.ADMIN, Role.PRIVACY_OFFICER, Role.AGENT)
#: Who reads one customer's decisions.
INDIVIDUAL_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.AGENT)
#: Who reads aggregates of decisions.
AGGREGATE_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST)
#: The roles of the `customer` query (cdlm.customers.api.queries.READERS; not imported:
#: the customer types import this module).
CUSTOMER_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST, Role.AGENT)
#: Methods that cdlm records itself: a client may not claim them.
SYSTEM_METHODS = frozenset({Method.GPC, Method.REQUEST, Method.MERGE, Method.UNMERGE})
_BY_CODE = [SortKey("code")]
_LEDGER_ORDER = [SortKey("sequence")]

Customer = Annotated["CustomerNode", strawberry.lazy("cdlm.customers.api.types")]
IdempotencyKey = Annotated[
    str | None,
    strawberry.argument(
        description="Any string of 1 to 200 characters, new for each decision: a retry with "
        "the same key and input records nothing new and returns the first result."
    ),
]
CustomerIdArgument = Annotated[
    strawberry.ID, strawberry.argument(description="Global id of the customer.")
]
PurposeCodeArgument = Annotated[
    str, strawberry.argument(description="Code of the purpose (e.g. `newsletter`).")
]


async def _customer(info: Info[Any, Any], customer_id: uuid.UUID) -> "CustomerNode | None":
    from cdlm.customers.api.reading import customer_node  # the customer types import us

    return await customer_node(info, customer_id)


# --------------------------------------------------------------------------- types


@strawberry.type(description="One version of a purpose's notice text (versions never change).")
class NoticeVersion:
    version: int = strawberry.field(description="Version number, from 1, one more per change.")
    text: str = strawberry.field(description="The notice as shown to people.")
    created_at: datetime = strawberry.field(description="When this version became current.")


@strawberry.type(
    name="Purpose",
    description="Why customer data is used: an entry of the purposes catalog, with the lawful "
    "basis it rests on, how consent works for it and the notice people are shown.",
)
class PurposeNode(Node):
    code: str = strawberry.field(
        description="Stable code that decisions and checks name (lower case, e.g. "
        "`newsletter`); it never changes."
    )
    name: str = strawberry.field(description="Name for people.")
    description: str = strawberry.field(description="What the purpose is (may be empty).")
    lawful_basis: LawfulBasis = strawberry.field(
        description="GDPR Art. 6(1) basis the processing rests on."
    )
    mechanism: Mechanism = strawberry.field(
        description="How consent works for it, and so what applies before any decision."
    )
    data_use: str = strawberry.field(
        description="fideslang data use key (e.g. `marketing.communications.email`)."
    )
    data_categories: list[str] = strawberry.field(
        description="fideslang data category keys of the data it uses, sorted."
    )
    sale_or_sharing: bool = strawberry.field(
        description="True when the data is sold or shared (CCPA): a Global Privacy Control "
        "signal opts out of it."
    )
    recipients: list[str] = strawberry.field(
        description="Names or categories of the recipients the data is disclosed to (empty: "
        "none recorded)."
    )
    current_version: int = strawberry.field(
        description="Version of the notice a grant must name now."
    )
    created_at: datetime = strawberry.field(description="When the purpose was added.")
    updated_at: datetime = strawberry.field(description="When the purpose last changed.")
    row: strawberry.Private[Purpose]

    @classmethod
    def from_row(cls, row: Purpose) -> "PurposeNode":
        return cls(
            id=global_id("Purpose", row.id),
            code=row.code,
            name=row.name,
            description=row.description,
            lawful_basis=row.lawful_basis,
            mechanism=row.mechanism,
            data_use=row.data_use,
            data_categories=list(row.data_categories),
            sale_or_sharing=row.sale_or_sharing,
            recipients=list(row.recipients),
            current_version=row.current_version,
            created_at=row.created_at,
            updated_at=row.updated_at,
            row=row,
        )

    @strawberry.field(description="Every notice version, oldest first (none is ever removed).")
    async def notices(self, info: Info[Any, Any]) -> list[NoticeVersion]:
        found = await info.context.loaders.get(loaders.notices_by_purpose).load(self.row.id)
        return [
            NoticeVersion(version=n.version, text=n.text, created_at=n.created_at) for n in found
        ]


@strawberry.type(
    name="ConsentEntry",
    description="One decision in the consent ledger: append-only, each entry chained to the "
    "one before by its hash.",
)
class ConsentEntryNode(Node):
    sequence: int = strawberry.field(description="Position in the ledger (increasing).")
    customer_id: strawberry.ID = strawberry.field(
        description="Global id of the customer the decision is about (the profile it was "
        "recorded for, which may since have been merged into another)."
    )
    decision: Decision = strawberry.field(description="What was decided.")
    notice_version: int | None = strawberry.field(
        description="Version of the purpose's notice the person was shown; null when none "
        "was named (withdrawals, denials, opt-outs)."
    )
    method: Method = strawberry.field(description="How the decision was captured.")
    channel: str = strawberry.field(description="Where it was captured (a code, e.g. `web`).")
    decided_at: datetime = strawberry.field(description="When the person decided.")
    recorded_at: datetime = strawberry.field(description="When cdlm recorded it.")
    hash: str = strawberry.field(description="SHA-256 (hex) of this entry and the previous hash.")
    previous_hash: str = strawberry.field(
        description="Hash of the entry before (64 zeros for the first)."
    )
    row: strawberry.Private[ConsentEntry]

    @classmethod
    def from_row(cls, row: ConsentEntry) -> "ConsentEntryNode":
        """The entry; its purpose must be loaded (``select_related("purpose")``)."""
        return cls(
            id=global_id("ConsentEntry", row.id),
            sequence=row.sequence,
            customer_id=global_id("Customer", row.customer_id),
            decision=row.decision,
            notice_version=row.notice_version,
            method=row.method,
            channel=row.channel,
            decided_at=row.decided_at,
            recorded_at=row.recorded_at,
            hash=row.hash,
            previous_hash=row.prev_hash,
            row=row,
        )

    @strawberry.field(description="Code of the purpose decided about.")
    def purpose_code(self) -> str:
        return self.row.purpose.code

    @strawberry.field(description="The purpose decided about.")
    def purpose(self) -> PurposeNode:
        return PurposeNode.from_row(self.row.purpose)

    @strawberry.field(
        description="The customer the decision is about (the profile it was merged into, if "
        "it was); null when the customer was erased.",
        extensions=allow(*CUSTOMER_READERS),
    )
    async def customer(self, info: Info[Any, Any]) -> Customer | None:
        return await _customer(info, self.row.customer_id)


@strawberry.type(description="Whether a purpose may use the customer's data, and why.")
class ConsentStatus:
    purpose_code: str = strawberry.field(description="Code of the purpose.")
    permitted: bool = strawberry.field(
        description="The answer to 'may we process?': false while the customer's processing is "
        "restricted, whatever the decisions."
    )
    restricted: bool = strawberry.field(
        description="True when the customer's processing is restricted (GDPR Art. 18) or the "
        "customer is gone: nothing is permitted."
    )
    decision: Decision | None = strawberry.field(
        description="The latest decision; null when the person has not decided (the "
        "mechanism's default applies)."
    )
    by_default: bool = strawberry.field(
        description="True when no decision was made and the purpose's mechanism decides."
    )
    notice_version: int | None = strawberry.field(
        description="Notice version named by the latest decision; null when none was."
    )
    decided_at: datetime | None = strawberry.field(
        description="When the latest decision was made; null when there is none."
    )
    purpose_row: strawberry.Private[Purpose]

    @classmethod
    def of(cls, answer: service.Answer) -> "ConsentStatus":
        entry = answer.latest
        return cls(
            purpose_code=answer.purpose.code,
            permitted=answer.permitted,
            restricted=answer.restricted,
            decision=entry.decision if entry else None,
            by_default=entry is None,
            notice_version=entry.notice_version if entry else None,
            decided_at=entry.decided_at if entry else None,
            purpose_row=answer.purpose,
        )

    @strawberry.field(description="The purpose.")
    def purpose(self) -> PurposeNode:
        return PurposeNode.from_row(self.purpose_row)


@strawberry.type(description="May a customer's data be used for a purpose: the answer alone.")
class ProcessingAnswer:
    purpose_code: str = strawberry.field(description="Code of the purpose asked about.")
    permitted: bool = strawberry.field(
        description="False while the customer's processing is restricted, whatever the decisions."
    )
    restricted: bool = strawberry.field(
        description="True when the customer's processing is restricted (GDPR Art. 18) or the "
        "customer is gone (unknown or erased)."
    )


@strawberry.type(description="How many customers grant one purpose.")
class OptInRate:
    purpose_code: str = strawberry.field(description="Code of the purpose.")
    granted: int = strawberry.field(
        description="Customers whose latest decision grants the purpose."
    )
    customers: int = strawberry.field(
        description="Customers counted (not erased, restricted or merged into another)."
    )
    rate: float = strawberry.field(
        description="granted / customers, from 0 to 1, rounded to 4 decimals (0 when there is "
        "no customer)."
    )
    purpose_row: strawberry.Private[Purpose]

    @strawberry.field(description="The purpose.")
    def purpose(self) -> PurposeNode:
        return PurposeNode.from_row(self.purpose_row)


@strawberry.type(description="A page of purposes, by code.")
class PurposeConnection(CountedConnection[PurposeNode]):
    pass


@strawberry.type(description="A page of a customer's consent decisions, oldest first.")
class ConsentEntryConnection(CountedConnection[ConsentEntryNode]):
    pass


@strawberry.input(description="Which purposes to list; every criterion given must hold.")
class PurposeFilter:
    codes: list[str] | None = strawberry.field(
        default=None, description="Only the purposes with these codes."
    )
    mechanism: Mechanism | None = strawberry.field(
        default=None, description="Only purposes with this mechanism."
    )
    lawful_basis: LawfulBasis | None = strawberry.field(
        default=None, description="Only purposes resting on this lawful basis."
    )
    sale_or_sharing: bool | None = strawberry.field(
        default=None,
        description="Only purposes that sell or share data (true) or that do not (false).",
    )


@strawberry.input(
    description="Which of a customer's decisions to list; every criterion given must hold."
)
class ConsentHistoryFilter:
    purpose_code: str | None = strawberry.field(
        default=None, description="Only decisions about the purpose with this code."
    )
    decision: Decision | None = strawberry.field(
        default=None, description="Only decisions of this kind."
    )
    method: Method | None = strawberry.field(
        default=None, description="Only decisions captured this way."
    )


# --------------------------------------------------------------------------- inputs


@strawberry.input(description="A new purpose of the catalog, with the text of its first notice.")
class CreatePurposeInput:
    code: str = strawberry.field(
        description="Stable code: 2 to 64 characters, lower-case letters, digits, `_`, `.` and "
        "`-`, starting with a letter (e.g. `newsletter`). Cannot be changed later."
    )
    name: str = strawberry.field(description="Name for people, 1 to 200 characters.")
    description: str = strawberry.field(
        description="What the purpose is, up to 20,000 characters (may be empty)."
    )
    lawful_basis: LawfulBasis = strawberry.field(
        description="Basis the processing rests on. CONSENT goes with mechanism OPT_IN (and "
        "OPT_IN with CONSENT)."
    )
    mechanism: Mechanism = strawberry.field(description="How consent works for the purpose.")
    data_use: str = strawberry.field(
        description="fideslang data use key, e.g. `marketing.communications.email`."
    )
    data_categories: list[str] = strawberry.field(
        description="fideslang data category keys of the data it uses, e.g. "
        "`user.contact.email` (may be empty)."
    )
    notice_text: str = strawberry.field(
        description="Text of notice version 1, as shown to people (1 to 20,000 characters)."
    )
    sale_or_sharing: bool = strawberry.field(
        default=False,
        description="True when the data is sold or shared (CCPA); then recipients are required.",
    )
    recipients: list[str] | None = strawberry.field(
        default=None,
        description="Names or categories of recipients (at most 50, each 1-200 characters; "
        "repeats are dropped); required when saleOrSharing is true. Null or omitted: none.",
    )


@strawberry.input(
    description="Changes to a purpose. A field left out keeps its value; null clears the "
    "fields that can be empty (description, dataCategories, recipients) and is refused for the "
    "others. A new notice text becomes a new notice version."
)
class UpdatePurposeInput:
    id: strawberry.ID = strawberry.field(description="Global id of the purpose.")
    name: str | None = strawberry.field(
        default=strawberry.UNSET, description="New name, 1 to 200 characters; cannot be null."
    )
    description: str | None = strawberry.field(
        default=strawberry.UNSET, description="New description; null empties it."
    )
    data_categories: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Replaces the fideslang data categories; null or [] empties them.",
    )
    notice_text: str | None = strawberry.field(
        default=strawberry.UNSET,
        description="New notice text: when it differs from the current one it becomes the "
        "next version, which new grants must name. Cannot be null.",
    )
    recipients: list[str] | None = strawberry.field(
        default=strawberry.UNSET,
        description="Replaces the recipients; null or [] empties them, which a purpose that "
        "sells or shares data refuses.",
    )


@strawberry.input(description="Evidence of how a decision was made, stored sealed.")
class ConsentEvidenceInput:
    user_agent: str | None = strawberry.field(
        default=None, description="The browser's User-Agent (at most 512 characters)."
    )
    ip_address: str | None = strawberry.field(
        default=None, description="The person's IP address; kept only as a keyed digest."
    )


_CUSTOMER_ID = "Global id of the customer deciding (a profile merged into another: the "
_CUSTOMER_ID += "decision goes to the profile it was merged into)."
_CHANNEL = "Where the decision was captured: a code of lower-case letters, digits, `_` and `-`, "
_CHANNEL += "starting with a letter, at most 32 characters (e.g. `web`, `app`, `store`)."
_DECIDED_AT = "When the person decided, with a time zone (default: now); not in the future "
_DECIDED_AT += "and not before a later decision about the same purpose."
_METHOD = "How the decision was captured: FORM, API, IMPORT or AGENT (the others are recorded "
_METHOD += "by cdlm itself)."


@strawberry.input(description="A person grants consent to one purpose.")
class GrantConsentInput:
    customer_id: strawberry.ID = strawberry.field(description=_CUSTOMER_ID)
    purpose_code: str = strawberry.field(description="Code of the purpose consented to.")
    notice_version: int = strawberry.field(
        description="Version of the purpose's notice the person was shown: the version that "
        "was current at decidedAt (a stale one is refused: show the new notice)."
    )
    method: Method = strawberry.field(default=Method.API, description=_METHOD)
    channel: str = strawberry.field(default="web", description=_CHANNEL)
    decided_at: datetime | None = strawberry.field(default=None, description=_DECIDED_AT)
    evidence: ConsentEvidenceInput | None = strawberry.field(
        default=None,
        description="Evidence of the person's action; with method FORM it makes the grant the "
        "person's own action, which alone undoes an earlier objection or opt-out.",
    )


@strawberry.input(description="A person withdraws consent to one purpose (as easy as giving it).")
class WithdrawConsentInput:
    customer_id: strawberry.ID = strawberry.field(description=_CUSTOMER_ID)
    purpose_code: str = strawberry.field(description="Code of the purpose.")
    method: Method = strawberry.field(default=Method.API, description=_METHOD)
    channel: str = strawberry.field(default="web", description=_CHANNEL)
    decided_at: datetime | None = strawberry.field(default=None, description=_DECIDED_AT)
    evidence: ConsentEvidenceInput | None = strawberry.field(
        default=None, description="Evidence of the person's action."
    )


@strawberry.input(description="One decision of a preference centre.")
class ConsentPreferenceInput:
    purpose_code: str = strawberry.field(description="Code of the purpose.")
    granted: bool = strawberry.field(
        description="True grants consent; false denies it (withdraws it when granted before)."
    )
    notice_version: int | None = strawberry.field(
        default=None,
        description="Version of the notice shown; required when granted (see "
        "GrantConsentInput.noticeVersion).",
    )


@strawberry.input(description="Several decisions of one person at once, all recorded or none.")
class SetConsentPreferencesInput:
    customer_id: strawberry.ID = strawberry.field(description=_CUSTOMER_ID)
    preferences: list[ConsentPreferenceInput] = strawberry.field(
        description="One decision per purpose (at least one; a purpose at most once)."
    )
    method: Method = strawberry.field(default=Method.FORM, description=_METHOD)
    channel: str = strawberry.field(default="web", description=_CHANNEL)
    decided_at: datetime | None = strawberry.field(default=None, description=_DECIDED_AT)
    evidence: ConsentEvidenceInput | None = strawberry.field(
        default=None,
        description="Evidence of the person's action (see GrantConsentInput.evidence).",
    )


@strawberry.input(description="A browser sent the Global Privacy Control signal (Sec-GPC: 1).")
class RecordGlobalPrivacyControlInput:
    customer_id: strawberry.ID = strawberry.field(description=_CUSTOMER_ID)
    channel: str = strawberry.field(default="web", description=_CHANNEL)
    decided_at: datetime | None = strawberry.field(
        default=None, description="When the signal was received, with a time zone (default: now)."
    )
    evidence: ConsentEvidenceInput | None = strawberry.field(
        default=None, description="The request's user agent and IP address."
    )


# --------------------------------------------------------------------------- results


@strawberry.type(description="The purpose as saved.")
class PurposeSaved:
    purpose: PurposeNode = strawberry.field(description="The purpose, with its change applied.")


@strawberry.type(
    description="The decisions are in the ledger. A replay (the same idempotency key and input "
    "again) returns the entries of the first call and records nothing."
)
class ConsentRecorded:
    entries: list[ConsentEntryNode] = strawberry.field(
        description="The ledger entries appended, in ledger order; empty when nothing needed "
        "recording (a signal from a person already opted out of everything it concerns)."
    )
    customer_id: strawberry.ID = strawberry.field(
        description="Global id of the customer the decisions went to (the profile the given "
        "one was merged into, if it was)."
    )
    replayed: bool = strawberry.field(
        description="True when this answers an earlier call with the same idempotency key."
    )
    live_customer: strawberry.Private[uuid.UUID]

    @strawberry.field(
        description="The customer the decisions went to; null when erased since.",
        extensions=allow(*CUSTOMER_READERS),
    )
    async def customer(self, info: Info[Any, Any]) -> Customer | None:
        return await _customer(info, self.live_customer)

    @strawberry.field(
        description="The customer's consent status for every purpose, after these decisions "
        "(what Customer.consents answers).",
        extensions=allow(*INDIVIDUAL_READERS),
    )
    async def consents(self, info: Info[Any, Any]) -> list[ConsentStatus]:
        found = await service.answers([self.live_customer], await service.all_purposes())
        info.context.audit_read([self.live_customer], ["consents"], action="consent.read")
        return [ConsentStatus.of(answer) for answer in found[self.live_customer]]


CREATE_PURPOSE = Outcomes(
    "CreatePurposeResult",
    PurposeSaved,
    {
        ValidationError: "a field is malformed, not in the fideslang taxonomy, too long, or "
        "the basis and mechanism disagree (CONSENT goes with OPT_IN), or recipients are "
        "missing for a purpose that sells or shares data",
        ConflictError: "a purpose with this code exists",
    },
)
CreatePurposeResult = Annotated[
    PurposeSaved | ValidationError | ConflictError, CREATE_PURPOSE.marker
]
UPDATE_PURPOSE = Outcomes(
    "UpdatePurposeResult",
    PurposeSaved,
    {
        ValidationError: "the id is not a purpose's, a value is malformed or too long, a field "
        "that cannot be empty is null, or the recipients of a purpose that sells or shares "
        "data would be emptied",
        NotFoundError: "no purpose has this id",
    },
)
UpdatePurposeResult = Annotated[
    PurposeSaved | ValidationError | NotFoundError, UPDATE_PURPOSE.marker
]
_RECORDING_ERRORS: dict[type[UserError], str] = {
    ValidationError: "the customer id is not a customer's, the channel, time, evidence or "
    "idempotency key is malformed, or the method is one cdlm records itself",
    NotFoundError: "no customer has this id (or it was erased), or no purpose has the code",
}
_GRANT_ERRORS: dict[type[UserError], str] = {
    PolicyViolationError: "the notice version is not the one current at the time "
    "(STALE_NOTICE_VERSION), the customer's processing is restricted "
    "(PROCESSING_RESTRICTED), the person objected or opted out and this is not their own "
    "action (OBJECTION_IN_FORCE), or the purpose is notice-only and has no consent to give",
}
_LATER: dict[type[UserError], str] = {
    ConflictError: "a later decision about the purpose is already recorded, or the "
    "idempotency key was used for other input (IDEMPOTENCY_MISMATCH)",
}
GRANT_CONSENT = Outcomes(
    "GrantConsentResult", ConsentRecorded, {**_RECORDING_ERRORS, **_GRANT_ERRORS, **_LATER}
)
GrantConsentResult = Annotated[
    ConsentRecorded | ValidationError | NotFoundError | PolicyViolationError | ConflictError,
    GRANT_CONSENT.marker,
]
WITHDRAW_CONSENT = Outcomes(
    "WithdrawConsentResult", ConsentRecorded, {**_RECORDING_ERRORS, **_LATER}
)
WithdrawConsentResult = Annotated[
    ConsentRecorded | ValidationError | NotFoundError | ConflictError, WITHDRAW_CONSENT.marker
]
SET_CONSENT_PREFERENCES = Outcomes(
    "SetConsentPreferencesResult",
    ConsentRecorded,
    {
        ValidationError: "the customer id is not a customer's, no preference is given or a "
        "purpose is named twice, the channel, time, evidence, a notice version or the "
        "idempotency key is malformed, or the method is one cdlm records itself",
        NotFoundError: "no customer has this id (or it was erased), or no purpose has a code",
        **_GRANT_ERRORS,
        **_LATER,
    },
)
SetConsentPreferencesResult = Annotated[
    ConsentRecorded | ValidationError | NotFoundError | PolicyViolationError | ConflictError,
    SET_CONSENT_PREFERENCES.marker,
]
RECORD_GLOBAL_PRIVACY_CONTROL = Outcomes(
    "RecordGlobalPrivacyControlResult",
    ConsentRecorded,
    {
        ValidationError: "the customer id is not a customer's, or the channel, time, evidence "
        "or idempotency key is malformed",
        NotFoundError: "no customer has this id (or it was erased)",
        **_LATER,
    },
)
RecordGlobalPrivacyControlResult = Annotated[
    ConsentRecorded | ValidationError | NotFoundError | ConflictError,
    RECORD_GLOBAL_PRIVACY_CONTROL.marker,
]


# --------------------------------------------------------------------------- helpers


def _capture(method: Method, given: Any) -> service.Capture:
    evidence = given.evidence or ConsentEvidenceInput()
    return service.Capture(
        method=method,
        channel=given.channel,
        decided_at=given.decided_at,
        user_agent=evidence.user_agent,
        ip_address=evidence.ip_address,
    )


def _client_method(method: Method) -> None:
    if method in SYSTEM_METHODS:
        raise ValidationFailed(
            "This method is recorded by cdlm itself; use FORM, API, IMPORT or AGENT.",
            field="input.method",
        )


async def _record(
    info: Info[Any, Any],
    recording: service.ConsentRecording,
    idempotency_key: str | None,
) -> ConsentRecorded:
    actor = await require_principal(info)
    ids, replayed = await service.record(actor, info.context.vault, recording, idempotency_key)
    return await _recorded(recording.customer_id, ids, replayed)


async def _recorded(asked: uuid.UUID, ids: list[uuid.UUID], replayed: bool) -> ConsentRecorded:
    found = await service.entries_by_ids(ids)
    entries = sorted((found[i] for i in ids if i in found), key=lambda e: e.sequence)
    live = entries[0].customer_id if entries else await service.live_customer(asked)
    return ConsentRecorded(
        entries=[ConsentEntryNode.from_row(e) for e in entries],
        customer_id=global_id("Customer", live),
        replayed=replayed,
        live_customer=live,
    )


def _change(input: UpdatePurposeInput) -> service.PurposeChange:
    """The service's change by the one partial-update rule (:mod:`cdlm.graphql.updates`)."""
    given = Changes()
    change = service.PurposeChange(
        parse_id(input.id, "input.id", "Purpose"),
        name=given.kept(input.name, "input.name"),
        description=given.clearable(input.description, ""),
        data_categories=given.clearable(input.data_categories, []),
        notice_text=given.kept(input.notice_text, "input.noticeText"),
        recipients=given.clearable(input.recipients, []),
    )
    given.check()
    return change


async def fetch_entries(info: Info[Any, Any], ids: list[uuid.UUID]) -> list[object | None]:
    """Ledger entries for node(id:); reading them is a read of the customers' consents."""
    found = await service.entries_by_ids(ids)
    info.context.audit_read(
        sorted({e.customer_id for e in found.values()}), ["consents"], action="consent.read"
    )
    return [ConsentEntryNode.from_row(found[i]) if i in found else None for i in ids]


# --------------------------------------------------------------------------- roots


@strawberry.type
class ConsentQuery:
    @strawberry.field(description="The purposes catalog, by code.", extensions=allow(*ALL_ROLES))
    async def purposes(
        self,
        filter: Annotated[
            PurposeFilter | None,
            strawberry.argument(description="Which purposes (default: all)."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> PurposeConnection:
        given = filter or PurposeFilter()
        criteria = service.PurposeFilter(
            codes=given.codes,
            mechanism=given.mechanism,
            lawful_basis=given.lawful_basis,
            sale_or_sharing=given.sale_or_sharing,
        )
        page = await paginate(
            service.purposes_query(criteria),
            order=_BY_CODE,
            first=first,
            after=after,
            last=last,
            before=before,
        )
        return page.to_connection(PurposeNode.from_row, PurposeConnection)  # type: ignore[return-value]

    @strawberry.field(
        description="A customer's consent decisions, oldest first, with those of the profiles "
        "merged into it. Reading them is recorded in the audit trail.",
        extensions=allow(*INDIVIDUAL_READERS),
    )
    async def consent_history(
        self,
        info: Info[Any, Any],
        customer_id: CustomerIdArgument,
        filter: Annotated[
            ConsentHistoryFilter | None,
            strawberry.argument(description="Which decisions (default: all)."),
        ] = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> ConsentEntryConnection:
        cid = parse_id(customer_id, "customerId", "Customer")
        given = filter or ConsentHistoryFilter()
        criteria = service.HistoryFilter(given.purpose_code, given.decision, given.method)
        query = await service.history_query(cid, criteria)
        page = await paginate(
            query, order=_LEDGER_ORDER, first=first, after=after, last=last, before=before
        )
        info.context.audit_read([cid], ["consents"], action="consent.read")
        return page.to_connection(ConsentEntryNode.from_row, ConsentEntryConnection)  # type: ignore[return-value]

    @strawberry.field(
        description="Whether a purpose could use a customer's data at a past moment, and why "
        "(decisions made by then, and restriction in force then). Audited as a read.",
        extensions=allow(*INDIVIDUAL_READERS),
    )
    async def consent_at(
        self,
        info: Info[Any, Any],
        customer_id: CustomerIdArgument,
        purpose_code: PurposeCodeArgument,
        at: Annotated[datetime, strawberry.argument(description="The moment, with a time zone.")],
    ) -> ConsentStatus:
        if at.tzinfo is None:
            raise ValidationFailed("Give a time zone.", field="at")
        try:
            moment = at.astimezone(UTC)
        except OverflowError:
            raise ValidationFailed("The time is out of range.", field="at") from None
        cid = parse_id(customer_id, "customerId", "Customer")
        found = await service.answer(cid, purpose_code, moment)
        info.context.audit_read([cid], ["consents"], action="consent.read")
        return ConsentStatus.of(found)

    @strawberry.field(
        description="May this customer's data be used for this purpose now? The one check "
        "behind every use of customer data (decisions, the purpose's rules and restriction); "
        "for downstream systems before they send, share or analyse. An unknown or erased "
        "customer gets no.",
        extensions=allow(*ALL_ROLES),
    )
    async def may_process(
        self,
        info: Info[Any, Any],
        customer_id: CustomerIdArgument,
        purpose_code: PurposeCodeArgument,
    ) -> ProcessingAnswer:
        cid = parse_id(customer_id, "customerId", "Customer")
        found = await service.answer(cid, purpose_code)
        info.context.audit_read([cid], ["consents"], action="consent.read")
        # The answer only: the decisions behind it are for the roles that read them.
        return ProcessingAnswer(
            purpose_code=found.purpose.code, permitted=found.permitted, restricted=found.restricted
        )

    @strawberry.field(
        description="The customer's current consents as a Kantara Consent Receipt (v1.1) JSON "
        "object, as that specification defines it. Audited as a read.",
        extensions=allow(*INDIVIDUAL_READERS),
    )
    async def consent_receipt(self, info: Info[Any, Any], customer_id: CustomerIdArgument) -> JSON:
        settings = info.context.settings
        controller = service.Controller(
            settings.controller_name,
            settings.controller_email,
            settings.policy_url,
            settings.jurisdiction,
        )
        cid = parse_id(customer_id, "customerId", "Customer")
        found: JSON = await service.receipt(cid, controller)  # type: ignore[assignment]
        info.context.audit_read([cid], ["consents"], action="consent.read")
        return found

    @strawberry.field(
        description="Per purpose (by code), the share of customers whose latest decision "
        "grants it.",
        extensions=allow(*AGGREGATE_READERS),
    )
    async def consent_opt_in_rates(self) -> list[OptInRate]:
        return [
            OptInRate(
                purpose_code=p.code,
                granted=granted,
                customers=total,
                rate=round(granted / total, 4) if total else 0.0,
                purpose_row=p,
            )
            for p, granted, total in await service.opt_in_rates()
        ]

    @strawberry.field(
        description="Re-compute the consent ledger's hash chain from its newest checkpoint "
        "(the entries since, and that the checkpointed entry is still there unchanged). "
        "`cdlm verify --full` re-hashes the whole ledger.",
        extensions=allow(*OVERSIGHT_ROLES),
    )
    async def verify_consent_ledger(self, info: Info[Any, Any]) -> HashChainReport:
        return await verification_report(info.context.settings, ledgers.CONSENT, "ConsentEntry")


@strawberry.type
class ConsentMutation:
    @strawberry.mutation(
        description=CREATE_PURPOSE.describe("Add a purpose to the catalog, with notice version 1."),
        extensions=allow(*CATALOG),
    )
    @errors_as_data
    async def create_purpose(
        self,
        info: Info[Any, Any],
        input: Annotated[CreatePurposeInput, strawberry.argument(description="The purpose.")],
    ) -> CreatePurposeResult:
        definition = service.PurposeDefinition(
            code=input.code,
            name=input.name,
            description=input.description,
            lawful_basis=input.lawful_basis,
            mechanism=input.mechanism,
            data_use=input.data_use,
            data_categories=list(input.data_categories),
            sale_or_sharing=input.sale_or_sharing,
            notice_text=input.notice_text,
            recipients=list(input.recipients or []),
        )
        row = await service.create_purpose(await require_principal(info), definition)
        return PurposeSaved(purpose=PurposeNode.from_row(row))

    @strawberry.mutation(
        description=UPDATE_PURPOSE.describe(
            "Change a purpose: omitted fields keep their value, null empties those that can "
            "be empty; a new notice text becomes a new version (old ones are kept)."
        ),
        extensions=allow(*CATALOG),
    )
    @errors_as_data
    async def update_purpose(
        self,
        info: Info[Any, Any],
        input: Annotated[UpdatePurposeInput, strawberry.argument(description="The changes.")],
    ) -> UpdatePurposeResult:
        change = _change(input)
        row = await service.update_purpose(await require_principal(info), change)
        return PurposeSaved(purpose=PurposeNode.from_row(row))

    @strawberry.mutation(
        description=GRANT_CONSENT.describe("Record that a person grants consent to a purpose."),
        extensions=allow(*CAPTURERS, personal=True),
    )
    @errors_as_data
    async def grant_consent(
        self,
        info: Info[Any, Any],
        input: Annotated[GrantConsentInput, strawberry.argument(description="The grant.")],
        idempotency_key: IdempotencyKey = None,
    ) -> GrantConsentResult:
        _client_method(input.method)
        recording = service.ConsentRecording(
            parse_id(input.customer_id, "input.customerId", "Customer"),
            [service.Choice(input.purpose_code, Decision.GRANTED, input.notice_version)],
            _capture(input.method, input),
            "grantConsent",
            paths=service.ChoicePaths("input", single=True),
        )
        return await _record(info, recording, idempotency_key)

    @strawberry.mutation(
        description=WITHDRAW_CONSENT.describe(
            "Record that a person withdraws consent to a purpose (as easy as giving it: "
            "recorded even while processing is restricted)."
        ),
        extensions=allow(*CAPTURERS, personal=True),
    )
    @errors_as_data
    async def withdraw_consent(
        self,
        info: Info[Any, Any],
        input: Annotated[WithdrawConsentInput, strawberry.argument(description="The withdrawal.")],
        idempotency_key: IdempotencyKey = None,
    ) -> WithdrawConsentResult:
        _client_method(input.method)
        recording = service.ConsentRecording(
            parse_id(input.customer_id, "input.customerId", "Customer"),
            [service.Choice(input.purpose_code, Decision.WITHDRAWN)],
            _capture(input.method, input),
            "withdrawConsent",
            paths=service.ChoicePaths("input", single=True),
        )
        return await _record(info, recording, idempotency_key)

    @strawberry.mutation(
        description=SET_CONSENT_PREFERENCES.describe(
            "Record several decisions of one person at once (a preference centre), all or none."
        ),
        extensions=allow(*CAPTURERS, personal=True),
    )
    @errors_as_data
    async def set_consent_preferences(
        self,
        info: Info[Any, Any],
        input: Annotated[
            SetConsentPreferencesInput, strawberry.argument(description="The decisions.")
        ],
        idempotency_key: IdempotencyKey = None,
    ) -> SetConsentPreferencesResult:
        _client_method(input.method)
        choices = [
            service.Choice(
                p.purpose_code,
                Decision.GRANTED if p.granted else Decision.DENIED,
                p.notice_version,
            )
            for p in input.preferences
        ]
        recording = service.ConsentRecording(
            parse_id(input.customer_id, "input.customerId", "Customer"),
            choices,
            _capture(input.method, input),
            "setConsentPreferences",
            paths=service.ChoicePaths("input.preferences"),
        )
        return await _record(info, recording, idempotency_key)

    @strawberry.mutation(
        description=RECORD_GLOBAL_PRIVACY_CONTROL.describe(
            "Honour a Global Privacy Control signal (Sec-GPC: 1): opt out of every purpose "
            "that sells or shares data or does targeted advertising (withdrawn where granted, "
            "denied otherwise; purposes already opted out of get no new entry)."
        ),
        extensions=allow(*CAPTURERS, personal=True),
    )
    @errors_as_data
    async def record_global_privacy_control(
        self,
        info: Info[Any, Any],
        input: Annotated[
            RecordGlobalPrivacyControlInput, strawberry.argument(description="The signal.")
        ],
        idempotency_key: IdempotencyKey = None,
    ) -> RecordGlobalPrivacyControlResult:
        customer_id = parse_id(input.customer_id, "input.customerId", "Customer")
        ids, replayed = await service.record_gpc(
            await require_principal(info),
            info.context.vault,
            customer_id,
            _capture(Method.GPC, input),
            idempotency_key,
        )
        return await _recorded(customer_id, ids, replayed)


#: How node(id:) fetches this domain's objects.
NODE_KINDS: tuple[NodeKind, ...] = (
    NodeKind.of("Purpose", ALL_ROLES, rows_fetcher(service.purposes_by_ids, PurposeNode.from_row)),
    NodeKind.of("ConsentEntry", INDIVIDUAL_READERS, fetch_entries),
)
