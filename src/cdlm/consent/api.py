"""GraphQL API of consent: purposes, decisions, history, receipts and the ledger check."""

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import strawberry
from strawberry.scalars import JSON
from strawberry.types.info import Info

from cdlm.consent import loaders, service
from cdlm.consent.models import ConsentEntry, Decision, Mechanism, Method, Purpose
from cdlm.core.errors import ValidationFailed
from cdlm.core.roles import ALL_ROLES, OVERSIGHT_ROLES, Role
from cdlm.graphql.errors import (
    ConflictError,
    NotFoundError,
    PolicyViolationError,
    ValidationError,
    errors_as_data,
)
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.relay import NodeKind
from cdlm.graphql.scalars import parse_id
from cdlm.graphql.vocabulary import LawfulBasis

strawberry.enum(Mechanism, description="How consent works for a purpose.")
strawberry.enum(Decision, description="A person's decision about a purpose.")
strawberry.enum(Method, description="How a decision was captured.")

CATALOG = (Role.ADMIN, Role.PRIVACY_OFFICER)
CAPTURERS = (Role.INGEST, Role.ADMIN, Role.PRIVACY_OFFICER, Role.AGENT)
INDIVIDUAL_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.AGENT)
AGGREGATE_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST)


@strawberry.type(description="One version of a purpose's notice text.")
class NoticeVersion:
    version: int
    text: str
    created_at: datetime


@strawberry.type(name="Purpose", description="Why customer data is used.")
class PurposeNode:
    id: strawberry.ID
    code: str
    name: str
    description: str
    lawful_basis: LawfulBasis
    mechanism: Mechanism
    data_use: str = strawberry.field(description="fideslang data use.")
    data_categories: list[str] = strawberry.field(description="fideslang data categories.")
    sale_or_sharing: bool
    recipients: list[str] = strawberry.field(
        description="Names or categories of the recipients the data is disclosed to (empty: "
        "none recorded)."
    )
    current_version: int
    row: strawberry.Private[Purpose]

    @classmethod
    def from_row(cls, row: Purpose) -> "PurposeNode":
        return cls(
            id=strawberry.ID(str(row.id)),
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
            row=row,
        )

    @strawberry.field(description="Every notice version, oldest first (none is ever removed).")
    async def notices(self, info: Info[Any, Any]) -> list[NoticeVersion]:
        found = await info.context.loaders.get(loaders.notices_by_purpose).load(self.row.id)
        return [
            NoticeVersion(version=n.version, text=n.text, created_at=n.created_at) for n in found
        ]


@strawberry.type(name="ConsentEntry", description="One entry of the consent ledger.")
class ConsentEntryNode:
    id: strawberry.ID
    sequence: int
    purpose_code: str
    decision: Decision
    notice_version: int | None
    method: Method
    channel: str
    decided_at: datetime
    recorded_at: datetime
    hash: str

    @classmethod
    def from_row(cls, row: ConsentEntry, purpose_code: str) -> "ConsentEntryNode":
        return cls(
            id=strawberry.ID(str(row.id)),
            sequence=row.sequence,
            purpose_code=purpose_code,
            decision=row.decision,
            notice_version=row.notice_version,
            method=row.method,
            channel=row.channel,
            decided_at=row.decided_at,
            recorded_at=row.recorded_at,
            hash=row.hash,
        )


@strawberry.type(description="Whether a purpose may use the customer's data, and why.")
class ConsentStatus:
    purpose_code: str
    permitted: bool = strawberry.field(
        description="The answer to 'may we process?': false while the customer's processing is "
        "restricted, whatever the decisions."
    )
    restricted: bool = strawberry.field(
        description="True when the customer's processing is restricted (GDPR Art. 18) or the "
        "customer is gone: nothing is permitted."
    )
    decision: Decision | None = strawberry.field(description="Null: no decision yet.")
    by_default: bool = strawberry.field(description="True when the mechanism's default applies.")
    notice_version: int | None
    decided_at: datetime | None

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
        )


@strawberry.type(description="May a customer's data be used for a purpose: the answer alone.")
class ProcessingAnswer:
    purpose_code: str
    permitted: bool = strawberry.field(
        description="False while the customer's processing is restricted, whatever the decisions."
    )
    restricted: bool = strawberry.field(
        description="True when the customer's processing is restricted (GDPR Art. 18) or the "
        "customer is gone."
    )


@strawberry.type
class OptInRate:
    purpose_code: str
    granted: int
    customers: int
    rate: float


@strawberry.type
class ConsentLedgerReport:
    ok: bool
    entries_checked: int
    head_hash: str
    first_broken_sequence: int | None
    problem: str | None


@strawberry.input
class CreatePurposeInput:
    code: str
    name: str
    description: str
    lawful_basis: LawfulBasis
    mechanism: Mechanism
    data_use: str = strawberry.field(description="fideslang data use, e.g. marketing.advertising.")
    data_categories: list[str]
    notice_text: str
    sale_or_sharing: bool = False
    recipients: list[str] | None = strawberry.field(
        default=None,
        description="Names or categories of recipients (at most 50, each 1-200 characters); "
        "required when saleOrSharing is true.",
    )


@strawberry.input(description="A new notice text becomes a new version.")
class UpdatePurposeInput:
    id: strawberry.ID
    name: str | None = None
    description: str | None = None
    data_categories: list[str] | None = None
    notice_text: str | None = None
    recipients: list[str] | None = strawberry.field(
        default=None,
        description="Replaces the recipients (omitted: kept); a purpose that sells or shares "
        "data keeps at least one.",
    )


@strawberry.input
class EvidenceInput:
    user_agent: str | None = None
    ip_address: str | None = strawberry.field(
        default=None, description="Kept only as a keyed digest."
    )


@strawberry.input
class ConsentInput:
    customer_id: strawberry.ID
    purpose_code: str
    notice_version: int | None = strawberry.field(
        default=None, description="The notice version shown; required to grant."
    )
    method: Method = Method.API
    channel: str = "web"
    decided_at: datetime | None = None
    evidence: EvidenceInput | None = None


@strawberry.input
class PreferenceInput:
    purpose_code: str
    granted: bool
    notice_version: int | None = None


@strawberry.input
class ConsentPreferencesInput:
    customer_id: strawberry.ID
    preferences: list[PreferenceInput]
    method: Method = Method.FORM
    channel: str = "web"
    decided_at: datetime | None = None
    evidence: EvidenceInput | None = None


@strawberry.input
class GlobalPrivacyControlInput:
    customer_id: strawberry.ID
    channel: str = "web"
    decided_at: datetime | None = None
    evidence: EvidenceInput | None = None


@strawberry.type
class PurposeSaved:
    purpose: PurposeNode


@strawberry.type(description="The decisions were appended to the ledger.")
class ConsentRecorded:
    entry_ids: list[strawberry.ID]
    replayed: bool


PurposeResult = Annotated[
    PurposeSaved | ValidationError | ConflictError | NotFoundError,
    strawberry.union("PurposeResult"),
]
ConsentResult = Annotated[
    ConsentRecorded | ValidationError | NotFoundError | PolicyViolationError | ConflictError,
    strawberry.union("ConsentResult"),
]


def _capture(method: Method, given: Any) -> service.Capture:
    evidence = given.evidence or EvidenceInput()
    return service.Capture(
        method=method,
        channel=given.channel,
        decided_at=given.decided_at,
        user_agent=evidence.user_agent,
        ip_address=evidence.ip_address,
    )


def _recorded(ids: list[uuid.UUID], replayed: bool) -> ConsentRecorded:
    return ConsentRecorded(entry_ids=[strawberry.ID(str(i)) for i in ids], replayed=replayed)


async def _record_one(
    info: Info[Any, Any],
    input: ConsentInput,
    decision: Decision,
    idempotency_key: str | None,
    operation: str,
) -> ConsentRecorded:
    recording = service.ConsentRecording(
        parse_id(input.customer_id, "input.customerId"),
        [service.Choice(input.purpose_code, decision, input.notice_version)],
        _capture(input.method, input),
        operation,
    )
    ids, replayed = await service.record(
        await require_principal(info), info.context.vault, recording, idempotency_key
    )
    return _recorded(ids, replayed)


@strawberry.type
class ConsentQuery:
    @strawberry.field(description="The purposes catalog.", extensions=allow(*ALL_ROLES))
    async def purposes(self) -> list[PurposeNode]:
        return [PurposeNode.from_row(p) for p in await service.all_purposes()]

    @strawberry.field(
        description="Every consent decision of a customer, oldest first.",
        extensions=allow(*INDIVIDUAL_READERS),
    )
    async def consent_history(
        self, info: Info[Any, Any], customer_id: strawberry.ID, purpose_code: str | None = None
    ) -> list[ConsentEntryNode]:
        cid = parse_id(customer_id, "customerId")
        rows = await service.history(cid, purpose_code)
        info.context.audit_read([cid], ["consents"], action="consent.read")
        return [ConsentEntryNode.from_row(r, r.purpose.code) for r in rows]

    @strawberry.field(
        description="Whether a purpose could use a customer's data at a past moment.",
        extensions=allow(*INDIVIDUAL_READERS),
    )
    async def consent_at(
        self, info: Info[Any, Any], customer_id: strawberry.ID, purpose_code: str, at: datetime
    ) -> ConsentStatus:
        if at.tzinfo is None:
            raise ValidationFailed("Give a time zone.", field="at")
        try:
            moment = at.astimezone(UTC)
        except OverflowError:
            raise ValidationFailed("The time is out of range.", field="at") from None
        cid = parse_id(customer_id, "customerId")
        found = await service.answer(cid, purpose_code, moment)
        info.context.audit_read([cid], ["consents"], action="consent.read")
        return ConsentStatus.of(found)

    @strawberry.field(
        description="May this customer's data be used for this purpose now? The one check "
        "behind every use of customer data (decisions, the purpose's rules and restriction); "
        "for downstream systems before they send, share or analyse.",
        extensions=allow(*ALL_ROLES),
    )
    async def may_process(
        self, info: Info[Any, Any], customer_id: strawberry.ID, purpose_code: str
    ) -> ProcessingAnswer:
        cid = parse_id(customer_id, "customerId")
        found = await service.answer(cid, purpose_code)
        info.context.audit_read([cid], ["consents"], action="consent.read")
        # The answer only: the decisions behind it are for the roles that read them.
        return ProcessingAnswer(
            purpose_code=found.purpose.code, permitted=found.permitted, restricted=found.restricted
        )

    @strawberry.field(
        description="The customer's consents as a Kantara Consent Receipt (v1.1) JSON.",
        extensions=allow(*INDIVIDUAL_READERS),
    )
    async def consent_receipt(self, info: Info[Any, Any], customer_id: strawberry.ID) -> JSON:
        settings = info.context.settings
        controller = service.Controller(
            settings.controller_name,
            settings.controller_email,
            settings.policy_url,
            settings.jurisdiction,
        )
        cid = parse_id(customer_id, "customerId")
        found: JSON = await service.receipt(cid, controller)  # type: ignore[assignment]
        info.context.audit_read([cid], ["consents"], action="consent.read")
        return found

    @strawberry.field(
        description="Per purpose, the share of customers whose latest decision grants it.",
        extensions=allow(*AGGREGATE_READERS),
    )
    async def consent_opt_in_rates(self) -> list[OptInRate]:
        return [
            OptInRate(
                purpose_code=p.code,
                granted=granted,
                customers=total,
                rate=round(granted / total, 4) if total else 0.0,
            )
            for p, granted, total in await service.opt_in_rates()
        ]

    @strawberry.field(
        description="Re-compute the consent ledger's hash chain.",
        extensions=allow(*OVERSIGHT_ROLES),
    )
    async def verify_consent_ledger(self) -> ConsentLedgerReport:
        found = await service.verify_ledger()
        return ConsentLedgerReport(
            ok=found.ok,
            entries_checked=found.entries_checked,
            head_hash=found.head_hash,
            first_broken_sequence=found.first_broken_sequence,
            problem=found.problem,
        )


@strawberry.type
class ConsentMutation:
    @strawberry.mutation(description="Add a purpose.", extensions=allow(*CATALOG))
    @errors_as_data
    async def create_purpose(
        self, info: Info[Any, Any], input: CreatePurposeInput
    ) -> PurposeResult:
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

    @strawberry.mutation(description="Change a purpose.", extensions=allow(*CATALOG))
    @errors_as_data
    async def update_purpose(
        self, info: Info[Any, Any], input: UpdatePurposeInput
    ) -> PurposeResult:
        change = service.PurposeChange(
            parse_id(input.id, "input.id"),
            name=input.name,
            description=input.description,
            data_categories=input.data_categories,
            notice_text=input.notice_text,
            recipients=input.recipients,
        )
        row = await service.update_purpose(await require_principal(info), change)
        return PurposeSaved(purpose=PurposeNode.from_row(row))

    @strawberry.mutation(description="Record consent to a purpose.", extensions=allow(*CAPTURERS))
    @errors_as_data
    async def grant_consent(
        self, info: Info[Any, Any], input: ConsentInput, idempotency_key: str | None = None
    ) -> ConsentResult:
        return await _record_one(info, input, Decision.GRANTED, idempotency_key, "grantConsent")

    @strawberry.mutation(
        description="Withdraw consent (as easy as giving it).", extensions=allow(*CAPTURERS)
    )
    @errors_as_data
    async def withdraw_consent(
        self, info: Info[Any, Any], input: ConsentInput, idempotency_key: str | None = None
    ) -> ConsentResult:
        return await _record_one(
            info, input, Decision.WITHDRAWN, idempotency_key, "withdrawConsent"
        )

    @strawberry.mutation(
        description="Record several decisions at once, all or none.", extensions=allow(*CAPTURERS)
    )
    @errors_as_data
    async def set_consent_preferences(
        self,
        info: Info[Any, Any],
        input: ConsentPreferencesInput,
        idempotency_key: str | None = None,
    ) -> ConsentResult:
        choices = [
            service.Choice(
                p.purpose_code,
                Decision.GRANTED if p.granted else Decision.DENIED,
                p.notice_version,
            )
            for p in input.preferences
        ]
        recording = service.ConsentRecording(
            parse_id(input.customer_id, "input.customerId"),
            choices,
            _capture(input.method, input),
            "setConsentPreferences",
        )
        ids, replayed = await service.record(
            await require_principal(info), info.context.vault, recording, idempotency_key
        )
        return _recorded(ids, replayed)

    @strawberry.mutation(
        description="Honour a Global Privacy Control signal (Sec-GPC: 1): opt out of sale, "
        "sharing and targeted advertising.",
        extensions=allow(*CAPTURERS),
    )
    @errors_as_data
    async def record_global_privacy_control(
        self,
        info: Info[Any, Any],
        input: GlobalPrivacyControlInput,
        idempotency_key: str | None = None,
    ) -> ConsentResult:
        ids, replayed = await service.record_gpc(
            await require_principal(info),
            info.context.vault,
            parse_id(input.customer_id, "input.customerId"),
            _capture(Method.GPC, input),
            idempotency_key,
        )
        return _recorded(ids, replayed)


#: How node(id:) fetches this domain's objects.
NODE_KINDS: tuple[NodeKind, ...] = ()
