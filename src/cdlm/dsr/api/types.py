"""GraphQL types of data subject requests: the request (a Relay node), its timeline, the
progress of carrying it out and the erasure certificate, and the enums they use."""

import json
import re
import uuid
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.types.info import Info

from cdlm.auth.api import StaffUserNode, staff_user_node
from cdlm.core import clock as clock_module
from cdlm.core.jurisdictions import Jurisdiction
from cdlm.core.personal_data import PersonalData
from cdlm.core.roles import Role
from cdlm.customers.api.reading import customer_node
from cdlm.customers.api.types import CustomerNode
from cdlm.dsr import loaders, service
from cdlm.dsr.models import (
    Attention,
    DataSubjectRequest,
    ExecutionStep,
    FiledVia,
    RequestType,
    TimelineKind,
    VerificationMethod,
)
from cdlm.dsr.workflow import FINAL, PublicStatus, Status
from cdlm.graphql.enums import describe_enum
from cdlm.graphql.masking import personal
from cdlm.graphql.permissions import allow
from cdlm.graphql.relay import Node, NodeKind, global_id
from cdlm.graphql.vocabulary import IdentifierKind
from cdlm.quality.fields import INPUT_PATHS

#: The GraphQL type name of a request (its global ids say so).
TYPE_NAME = "DataSubjectRequest"
HANDLERS = (Role.ADMIN, Role.PRIVACY_OFFICER)
FILERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.AGENT)
#: Who may read staff users (the roles of the `staffUser` query).
STAFF_READERS = (Role.ADMIN,)

describe_enum(
    RequestType,
    "The right a data subject exercises.",
    {
        RequestType.ACCESS: "A copy of everything held about them (GDPR Art. 15, CCPA right "
        "to know); sent as a download link.",
        RequestType.PORTABILITY: "Their data in a machine-readable format to take elsewhere "
        "(GDPR Art. 20); sent as a download link.",
        RequestType.RECTIFICATION: "Correct their profile (GDPR Art. 16, CCPA right to "
        "correct): the request carries the corrections.",
        RequestType.ERASURE: "Erase them (GDPR Art. 17, CCPA right to delete): crypto-shredding "
        "and deletion, with a certificate.",
        RequestType.RESTRICTION: "Restrict the processing of their data (GDPR Art. 18).",
        RequestType.OBJECTION: "Object to processing for some or every objectable purpose "
        "(GDPR Art. 21).",
        RequestType.OPT_OUT_OF_SALE: "Opt out of the sale or sharing of their data "
        "(CCPA/CPRA); needs no verification.",
    },
    name="DataSubjectRequestType",
)
describe_enum(
    Jurisdiction,
    "The law a request is handled under; it sets the deadline and whether it can be extended "
    "(the periods below are the defaults; CDLM_DSR_CLOCKS may change them).",
    {
        Jurisdiction.GDPR: "EU GDPR: one month, extendable once by two months.",
        Jurisdiction.UK_GDPR: "UK GDPR: one month, extendable once by two months.",
        Jurisdiction.CCPA: "California CCPA/CPRA: 45 days, extendable once by 45 days; receipt "
        "confirmed within 10 business days.",
        Jurisdiction.LGPD: "Brazil LGPD: 15 days, no extension.",
    },
)
describe_enum(
    Status,
    "Where a request is in its workflow. Staff set APPROVED, DENIED, CANCELLED and ON_HOLD; "
    "verification and execution set the others.",
    {
        Status.RECEIVED: "Received; the requester's identity is not checked yet.",
        Status.IDENTITY_PENDING: "Waiting for the requester to confirm the code sent to them "
        "(the clock is stopped where the law allows).",
        Status.VERIFIED: "The requester's identity is confirmed; waiting for a staff decision.",
        Status.APPROVED: "Approved; ready to be carried out (executeDataSubjectRequest).",
        Status.IN_PROGRESS: "Being carried out.",
        Status.COMPLETED: "Done (closed).",
        Status.DENIED: "Refused, with a reason the requester is told (closed).",
        Status.CANCELLED: "Withdrawn, a duplicate, or never verified (closed).",
        Status.ON_HOLD: "Stopped by staff or by a legal hold; approve it again to resume.",
        Status.FAILED: "A step failed (see `reason`); execute it again to resume where it stopped.",
    },
    name="DataSubjectRequestStatus",
)
describe_enum(
    PublicStatus,
    "A request's status as its requester sees it (the Data Rights Protocol's statuses).",
    {
        PublicStatus.OPEN: "Received and not being worked on yet.",
        PublicStatus.IN_PROGRESS: "Being worked on.",
        PublicStatus.FULFILLED: "Done.",
        PublicStatus.DENIED: "Refused; the requester was told why.",
        PublicStatus.REVOKED: "Cancelled.",
        PublicStatus.EXPIRED: "The identity was never confirmed in time; submit a new request.",
    },
    name="DataSubjectRequestPublicStatus",
)
describe_enum(
    VerificationMethod,
    "How the requester's identity was established.",
    {
        VerificationMethod.EMAIL_CODE: "A one-time code sent to their email address.",
        VerificationMethod.SMS_CODE: "A one-time code sent to their phone by SMS.",
        VerificationMethod.SIGNED_IN_ACCOUNT: "They were signed in to their account.",
        VerificationMethod.IDENTITY_DOCUMENT: "Staff checked an identity document.",
        VerificationMethod.KNOWN_CONTACT_DETAILS: "Staff matched contact details already held.",
        VerificationMethod.NOT_REQUIRED: "No check: only an opt-out of sale may go unverified "
        "(CCPA).",
    },
    name="DataSubjectRequestVerificationMethod",
)
describe_enum(
    FiledVia,
    "Who filed a request.",
    {
        FiledVia.SELF_SERVICE: "The data subject, through submitDataSubjectRequest.",
        FiledVia.STAFF: "A staff member on their behalf (letter, phone, in person).",
    },
    name="DataSubjectRequestFiledVia",
)
describe_enum(
    Attention,
    "Why an open request needs a look, as the scheduled tick flags it.",
    {
        Attention.DUE_SOON: "Due within the warning days (CDLM_DSR_DUE_SOON_DAYS).",
        Attention.OVERDUE: "Past its due date.",
    },
    name="DataSubjectRequestAttention",
)
describe_enum(
    TimelineKind,
    "What a timeline entry records.",
    {
        TimelineKind.RECEIVED: "The request was received (the note says how it was filed).",
        TimelineKind.STATUS_CHANGED: "The status changed (see fromStatus and toStatus).",
        TimelineKind.CODE_RESENT: "A new verification code was sent.",
        TimelineKind.VERIFICATION_FAILED: "A wrong verification code was tried (the note "
        "says how many attempts are left).",
        TimelineKind.DUPLICATE_LINKED: "A later request for the same thing was closed as a "
        "duplicate of this one.",
        TimelineKind.ASSIGNED: "The request was assigned to a staff member, or unassigned.",
        TimelineKind.DEADLINE_EXTENDED: "The deadline was extended (the note is the reason).",
        TimelineKind.DUE_SOON: "Flagged: due within the warning days.",
        TimelineKind.OVERDUE: "Flagged: past its due date.",
        TimelineKind.STEP_DONE: "A step of carrying it out is done (the note names the step).",
        TimelineKind.LINK_RESENT: "A new link to the copy of the data was sent.",
        TimelineKind.EXPORT_DOWNLOADED: "The requester downloaded the copy of their data.",
        TimelineKind.RETAINED_DATA_ERASED: "Data a legal hold kept from an erasure was erased "
        "once the hold ended.",
        TimelineKind.REQUESTER_DETAILS_DESTROYED: "The requester's contact details were destroyed.",
    },
    name="DataSubjectRequestTimelineKind",
)
describe_enum(
    ExecutionStep,
    "A step of carrying a request out; each runs once, and a failed request resumes after "
    "the last step done.",
    {
        ExecutionStep.COLLECT: "Access, portability: the copy of the data was made.",
        ExecutionStep.SEND_LINK: "Access, portability: a download link was sent.",
        ExecutionStep.RECTIFY: "Rectification: the corrections were applied.",
        ExecutionStep.RESTRICT: "Restriction: processing was restricted.",
        ExecutionStep.RECORD_CONSENT: "Objection, opt-out of sale: the opt-out was recorded in "
        "the consent ledger.",
        ExecutionStep.PLAN: "Erasure: what is held and what legal holds keep was counted.",
        ExecutionStep.RETAIN: "Erasure: what holds keep was re-sealed under a key of its own.",
        ExecutionStep.SUPPRESS: "Erasure: the person's identifiers were suppressed so no "
        "import re-creates them.",
        ExecutionStep.SHRED: "Erasure: the person's data keys were destroyed.",
        ExecutionStep.DELETE: "Erasure: the person's rows were deleted.",
    },
    name="DataSubjectRequestStep",
)


class TimelineActorKind(Enum):
    """Who made a timeline entry (the values of :class:`cdlm.core.principal.PrincipalKind`)."""

    USER = "user"
    API_KEY = "api_key"
    SYSTEM = "system"
    ANONYMOUS = "anonymous"


describe_enum(
    TimelineActorKind,
    "Who made a timeline entry.",
    {
        TimelineActorKind.USER: "A staff user (actorId is a StaffUser id).",
        TimelineActorKind.API_KEY: "A program with an API key (actorId is an ApiKey id).",
        TimelineActorKind.SYSTEM: "cdlm itself (the scheduled tick, an execution step).",
        TimelineActorKind.ANONYMOUS: "The requester, through the public mutations (no login).",
    },
    name="DataSubjectRequestActorKind",
)

#: The type of the object an actor id names, by actor kind.
_ACTOR_TYPES = {TimelineActorKind.USER: "StaffUser", TimelineActorKind.API_KEY: "ApiKey"}

#: Enums registered above, for the other API modules (so registration happens first).
__all__ = [
    "FILERS",
    "HANDLERS",
    "Jurisdiction",
    "PublicStatus",
    "RequestType",
    "Status",
    "VerificationMethod",
]


def request_id(key: uuid.UUID) -> strawberry.ID:
    """The global id of the request ``key``."""
    return global_id(TYPE_NAME, key)


def _optional_id(type_name: str, key: uuid.UUID | str | None) -> strawberry.ID | None:
    return None if key is None else global_id(type_name, key)


def _moment(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
#: Ids cdlm's own notes name, by the words before them: shown as the API's global ids.
_NOTE_IDS = re.compile(rf"\b(request|legal hold|to) ({_UUID})\b")
_NOTE_TYPES = {"request": TYPE_NAME, "legal hold": "LegalHold", "to": "StaffUser"}


def shown_note(text: str | None) -> str | None:
    """cdlm's own words about a request as the API shows them: the requests, legal holds and
    staff users they name (``request <id>``, ``legal hold <id>``, ``to <id>``) by global id."""
    if text is None:
        return None
    return _NOTE_IDS.sub(
        lambda m: f"{m.group(1)} {global_id(_NOTE_TYPES[m.group(1)], m.group(2))}", text
    )


def _profile_paths(names: list[str]) -> list[str]:
    """Profile field names as the API spells them below `Customer.profile`."""
    return [INPUT_PATHS.get(name, name) for name in names]


# ----------------------------------------------------------------------------- timeline


@strawberry.type(
    name="DataSubjectRequestTimelineEntry", description="One entry of a request's timeline."
)
class TimelineEntryNode:
    at: datetime = strawberry.field(description="When it happened.")
    kind: TimelineKind = strawberry.field(description="What happened.")
    from_status: Status | None = strawberry.field(
        description="The status before (STATUS_CHANGED entries only; else null)."
    )
    to_status: Status | None = strawberry.field(
        description="The status after (STATUS_CHANGED entries only; else null)."
    )
    actor_kind: TimelineActorKind = strawberry.field(description="Who did it.")
    actor_id: strawberry.ID | None = strawberry.field(
        description="Global id of the staff user (a StaffUser id) or API key (an ApiKey id) "
        "that did it; null for cdlm itself and for the requester."
    )
    note: str | None = strawberry.field(
        description="cdlm's note, or what staff wrote (null when there is none, and once the "
        "request's key is destroyed). cdlm's notes name requests, legal holds and staff users "
        "by global id."
    )

    @classmethod
    def of(cls, entry: service.TimelineEntry) -> "TimelineEntryNode":
        actor_kind = TimelineActorKind(entry.actor_kind)
        actor_type = _ACTOR_TYPES.get(actor_kind)
        return cls(
            at=entry.at,
            kind=entry.kind,
            from_status=entry.from_status,
            to_status=entry.to_status,
            actor_kind=actor_kind,
            actor_id=_optional_id(actor_type, entry.actor_id) if actor_type else None,
            note=entry.note if entry.by_staff else shown_note(entry.note),
        )


# ------------------------------------------------------------------ erasure certificate


@strawberry.type(description="How many events of one type.")
class EventTypeCount:
    type: str = strawberry.field(description="The event type (e.g. `purchase`).")
    count: int = strawberry.field(description="How many events of that type.")


def _event_counts(events: dict[str, int]) -> list[EventTypeCount]:
    return [EventTypeCount(type=kind, count=count) for kind, count in sorted(events.items())]


@strawberry.type(description="What was held about a person when their erasure was planned.")
class HeldData:
    profile_fields: list[str] = strawberry.field(
        description="Profile fields that had a value, as the API spells them below "
        "`Customer.profile` (`givenName`, `address.postalCode`)."
    )
    identities: int = strawberry.field(description="Identifiers (emails, phones, ids) held.")
    events: list[EventTypeCount] = strawberry.field(description="Events held, per type.")
    source_records: int = strawberry.field(
        description="Records as each source sent them (the raw input kept for lineage)."
    )
    refused_values: int = strawberry.field(
        description="Values refused by validation and kept for review."
    )

    @classmethod
    def of(cls, inventory: dict[str, Any]) -> "HeldData":
        return cls(
            profile_fields=_profile_paths(list(inventory.get("profile_fields", []))),
            identities=int(inventory.get("identities", 0)),
            events=_event_counts(dict(inventory.get("events", {}))),
            source_records=int(inventory.get("source_records", 0)),
            refused_values=int(inventory.get("refused_values", 0)),
        )


@strawberry.type(description="What an erasure erased (names and counts, never values).")
class ErasedData:
    profile_fields: list[str] = strawberry.field(
        description="Profile fields erased, as the API spells them below `Customer.profile` "
        "(`givenName`, `address.postalCode`)."
    )
    identities: int = strawberry.field(description="Identifiers (emails, phones, ids) erased.")
    events: list[EventTypeCount] = strawberry.field(
        description="Events erased, per type (types a legal hold keeps are left out)."
    )
    source_records: int = strawberry.field(
        description="Records as each source sent them, erased (0 when a hold keeps them)."
    )
    refused_values: int = strawberry.field(description="Values refused by validation, erased.")
    earlier_access_exports: int = strawberry.field(
        description="Copies of the data made for the person's earlier access requests, deleted."
    )


@strawberry.type(description="The data keys an erasure destroyed (crypto-shredding).")
class DestroyedKeys:
    customer_key: bool = strawberry.field(
        description="The person's data key was destroyed: every copy of their encrypted data, "
        "in backups and archives too, is unreadable."
    )
    earlier_request_keys: int = strawberry.field(
        description="Keys of the person's earlier, closed requests destroyed (their contact "
        "details and what staff wrote about them)."
    )


@strawberry.type(description="Data an erasure did not erase, and why.")
class RetainedData:
    category: str = strawberry.field(
        description="What is kept: a data category of the data map (`events`, "
        "`events.<type>`, `source_records`, `dsr.exports`), `consent_ledger` or `audit_trail`."
    )
    count: int | None = strawberry.field(
        description="How many rows are kept (null for the audit trail, which is not counted)."
    )
    reason: str = strawberry.field(description="Why it is kept (a hold's reason, or the law).")
    legal_hold_id: strawberry.ID | None = strawberry.field(
        description="Global id of the legal hold that keeps it (a LegalHold id); null for the "
        "consent ledger and the audit trail, which the law keeps."
    )
    until: datetime | None = strawberry.field(
        description="When the hold ends; null when it has no end date (or for the ledgers)."
    )

    @classmethod
    def of(cls, kept: dict[str, Any]) -> "RetainedData":
        return cls(
            category=str(kept["category"]),
            count=kept.get("count"),
            reason=str(kept.get("reason", "")),
            legal_hold_id=_optional_id("LegalHold", kept.get("hold_id")),
            until=_moment(kept.get("until")),
        )


@strawberry.type(description="Data a legal hold kept from an erasure, erased once it ended.")
class LaterErasure:
    categories: list[str] = strawberry.field(
        description="The categories erased now (see RetainedData.category)."
    )
    legal_hold_ids: list[strawberry.ID] = strawberry.field(
        description="Global ids of the legal holds that ended (LegalHold ids)."
    )
    erased_at: datetime = strawberry.field(description="When it was erased.")
    events: int = strawberry.field(description="Events erased.")
    source_records: int = strawberry.field(description="Source records erased.")
    earlier_access_exports: int = strawberry.field(
        description="Copies made for earlier access requests, deleted."
    )
    retained_key_destroyed: bool = strawberry.field(
        description="The key the kept data was re-sealed under was destroyed (nothing is kept "
        "any more)."
    )

    @classmethod
    def of(cls, later: dict[str, Any]) -> "LaterErasure":
        return cls(
            categories=list(later.get("categories", [])),
            legal_hold_ids=[global_id("LegalHold", h) for h in later.get("holds_ended", [])],
            erased_at=datetime.fromisoformat(later["erased_at"]),
            events=int(later.get("events", 0)),
            source_records=int(later.get("source_records", 0)),
            earlier_access_exports=int(later.get("earlier_access_exports", 0)),
            retained_key_destroyed=bool(later.get("retained_key_destroyed", False)),
        )


@strawberry.type(
    description="Proof of an erasure: what was erased, what was kept and why, with the "
    "SHA-256 of its canonical form. Data kept for a legal hold is erased when the hold ends; "
    "the certificate then grows an entry in `erasedLater` and a new digest."
)
class ErasureCertificate:
    certificate_id: str = strawberry.field(
        description="The certificate's own id (a UUID, the same every time it is read)."
    )
    request_id: strawberry.ID = strawberry.field(
        description="Global id of the erasure request (a DataSubjectRequest id)."
    )
    jurisdiction: Jurisdiction = strawberry.field(description="The law the request fell under.")
    received_at: datetime = strawberry.field(description="When the request was received.")
    issued_at: datetime = strawberry.field(description="When the certificate was issued.")
    controller: str = strawberry.field(
        description="The data controller (CDLM_CONTROLLER_NAME) that issued it."
    )
    customer_id: strawberry.ID | None = strawberry.field(
        description="Global id of the erased customer (a Customer id that now resolves to "
        "nothing); null when no data was held about the requester."
    )
    data_found: bool = strawberry.field(
        description="Whether any data was held about the requester."
    )
    erased: ErasedData = strawberry.field(description="What was erased.")
    keys_destroyed: DestroyedKeys = strawberry.field(
        description="The data keys destroyed (crypto-shredding)."
    )
    suppressed_identifiers: int = strawberry.field(
        description="Identifiers remembered (as keyed digests only) so that no later import "
        "collects the person again."
    )
    retained: list[RetainedData] = strawberry.field(description="What was kept, and why.")
    retained_data_is_restricted: bool = strawberry.field(
        description="Kept data may not be processed (true while any is kept for a hold)."
    )
    erased_later: list[LaterErasure] = strawberry.field(
        description="Data erased after the certificate was first issued, as legal holds ended."
    )
    sha256: str = strawberry.field(
        description="SHA-256 (hex) of `canonicalJson`: keep it to show the certificate was "
        "not altered."
    )
    canonical_json: str = strawberry.field(
        description="The certificate as issued: JSON with sorted keys and no spaces, whose "
        "SHA-256 is `sha256` (its field names are the issuer's, in snake_case)."
    )

    @classmethod
    def of(cls, body: dict[str, Any]) -> "ErasureCertificate":
        erased = body.get("erased", {})
        shredded = body.get("crypto_shredded", {})
        content = {k: v for k, v in body.items() if k != "sha256"}
        return cls(
            certificate_id=str(body["certificate_id"]),
            request_id=request_id(uuid.UUID(body["request_id"])),
            jurisdiction=Jurisdiction(body["jurisdiction"]),
            received_at=datetime.fromisoformat(body["received_at"]),
            issued_at=datetime.fromisoformat(body["issued_at"]),
            controller=str(body.get("controller", "")),
            customer_id=_optional_id("Customer", body.get("customer_id")),
            data_found=bool(body.get("data_found")),
            erased=ErasedData(
                profile_fields=_profile_paths(list(erased.get("profile_fields", []))),
                identities=int(erased.get("identities", 0)),
                events=_event_counts(dict(erased.get("events", {}))),
                source_records=int(erased.get("source_records", 0)),
                refused_values=int(erased.get("refused_values", 0)),
                earlier_access_exports=int(erased.get("earlier_access_exports", 0)),
            ),
            keys_destroyed=DestroyedKeys(
                customer_key=bool(shredded.get("customer_key", False)),
                earlier_request_keys=int(shredded.get("earlier_request_keys", 0)),
            ),
            suppressed_identifiers=int(body.get("suppressed_identifiers", 0)),
            retained=[RetainedData.of(r) for r in body.get("retained", [])],
            retained_data_is_restricted=bool(body.get("retained_data_is_restricted")),
            erased_later=[LaterErasure.of(x) for x in body.get("erased_later", [])],
            sha256=str(body["sha256"]),
            canonical_json=json.dumps(content, sort_keys=True, separators=(",", ":")),
        )


# -------------------------------------------------------------------------- progress


@strawberry.type(description="Access, portability: the copy of the data made.")
class AccessCopyStep:
    data_found: bool = strawberry.field(description="Whether any data was held.")
    size_bytes: int = strawberry.field(description="Size of the copy, in bytes.")


@strawberry.type(description="Access, portability: the latest download link sent.")
class ExportLinkStep:
    expires_at: datetime = strawberry.field(description="When the link stops working.")
    sent: bool = strawberry.field(
        description="The link went to the requester (false: they gave no email or phone)."
    )


@strawberry.type(description="Rectification: the corrections applied.")
class RectificationStep:
    data_found: bool = strawberry.field(
        description="Whether a customer was found to correct (false: nothing was changed)."
    )
    fields: list[str] = strawberry.field(
        description="The profile fields corrected, as the API spells them below "
        "`Customer.profile` (`givenName`, `address.postalCode`)."
    )


@strawberry.type(description="Restriction: processing restricted (GDPR Art. 18).")
class RestrictionStep:
    data_found: bool = strawberry.field(description="Whether a customer was found to restrict.")
    newly_restricted: bool = strawberry.field(
        description="The customer was not restricted before (false: already restricted, or "
        "no customer)."
    )


@strawberry.type(description="Objection, opt-out of sale: the opt-out recorded.")
class ConsentOptOutStep:
    data_found: bool = strawberry.field(description="Whether a customer was found.")
    consent_entry_ids: list[strawberry.ID] = strawberry.field(
        description="Global ids of the consent ledger entries written (ConsentEntry ids)."
    )


@strawberry.type(description="Erasure: what is held, and what legal holds keep.")
class ErasurePlanStep:
    data_found: bool = strawberry.field(description="Whether any data was held.")
    held: HeldData = strawberry.field(description="What was held when it was planned.")
    retained: list[RetainedData] = strawberry.field(
        description="What legal holds keep from the erasure (the ledgers are added on the "
        "certificate)."
    )
    consent_entries: int = strawberry.field(
        description="Consent ledger entries about the person (the ledger is kept: they are proof)."
    )


@strawberry.type(description="Erasure: what holds keep re-sealed under a key of its own.")
class ErasureRetainStep:
    rows_resealed: int = strawberry.field(description="Rows re-sealed.")


@strawberry.type(description="Erasure: the person's identifiers suppressed.")
class ErasureSuppressStep:
    identifiers_suppressed: int = strawberry.field(
        description="Identifiers remembered as keyed digests so no import collects them again."
    )


@strawberry.type(description="Erasure: the data keys destroyed.")
class ErasureShredStep:
    customer_key: bool = strawberry.field(description="The person's data key was destroyed.")
    earlier_access_exports: int = strawberry.field(
        description="Copies made for earlier access requests, deleted."
    )
    earlier_request_keys: int = strawberry.field(
        description="Keys of the person's earlier closed requests destroyed."
    )


@strawberry.type(description="Erasure: the person's rows deleted.")
class ErasureDeleteStep:
    events: int = strawberry.field(description="Events deleted.")
    source_records: int = strawberry.field(description="Source records deleted.")
    identities: int = strawberry.field(description="Identifiers deleted.")
    merged_profiles: int = strawberry.field(
        description="Profiles merged into the person's, deleted."
    )
    refused_values: int = strawberry.field(description="Refused values deleted.")
    match_records: int = strawberry.field(
        description="Match candidates and merge records naming the person, deleted."
    )
    customer_deleted: bool = strawberry.field(
        description="The customer record itself was deleted (false: it stays, empty and "
        "restricted, because a hold keeps some of its rows)."
    )


def _found(result: dict[str, Any]) -> bool:
    return bool(result.get("data_found", True))


@strawberry.type(
    name="DataSubjectRequestProgress",
    description="What carrying the request out has done so far: the steps done and the "
    "result of each (a step not done, or not part of this type of request, is null).",
)
class Progress:
    steps_done: list[ExecutionStep] = strawberry.field(
        description="The steps done, in the order they run (empty until it is carried out)."
    )
    legal_hold_id: strawberry.ID | None = strawberry.field(
        description="Global id of the legal hold that last stopped it (a LegalHold id); null "
        "when none did."
    )
    steps: strawberry.Private[dict[str, Any]]

    def _step(self, name: ExecutionStep) -> dict[str, Any] | None:
        found = self.steps.get(name.value)
        return dict(found) if found is not None else None

    @strawberry.field(description="The copy of the data (access, portability).")
    def collect(self) -> AccessCopyStep | None:
        done = self._step(ExecutionStep.COLLECT)
        if done is None:
            return None
        return AccessCopyStep(data_found=_found(done), size_bytes=int(done.get("bytes", 0)))

    @strawberry.field(description="The latest download link (access, portability).")
    def send_link(self) -> ExportLinkStep | None:
        done = self._step(ExecutionStep.SEND_LINK)
        if done is None:
            return None
        return ExportLinkStep(
            expires_at=datetime.fromisoformat(done["expires_at"]), sent=bool(done.get("sent"))
        )

    @strawberry.field(description="The corrections applied (rectification).")
    def rectify(self) -> RectificationStep | None:
        done = self._step(ExecutionStep.RECTIFY)
        if done is None:
            return None
        return RectificationStep(
            data_found=_found(done), fields=_profile_paths(list(done.get("fields", [])))
        )

    @strawberry.field(description="The restriction (restriction).")
    def restrict(self) -> RestrictionStep | None:
        done = self._step(ExecutionStep.RESTRICT)
        if done is None:
            return None
        return RestrictionStep(
            data_found=_found(done), newly_restricted=bool(done.get("newly_restricted"))
        )

    @strawberry.field(description="The opt-out recorded (objection, opt-out of sale).")
    def record_consent(self) -> ConsentOptOutStep | None:
        done = self._step(ExecutionStep.RECORD_CONSENT)
        if done is None:
            return None
        return ConsentOptOutStep(
            data_found=_found(done),
            consent_entry_ids=[
                global_id("ConsentEntry", e) for e in done.get("consent_entries", [])
            ],
        )

    @strawberry.field(description="What was held and what holds keep (erasure).")
    def plan(self) -> ErasurePlanStep | None:
        done = self._step(ExecutionStep.PLAN)
        if done is None:
            return None
        return ErasurePlanStep(
            data_found=bool(done.get("found")),
            held=HeldData.of(dict(done.get("inventory", {}))),
            retained=[RetainedData.of(r) for r in done.get("retained", [])],
            consent_entries=int(done.get("consent_entries", 0)),
        )

    @strawberry.field(description="What holds keep, re-sealed (erasure).")
    def retain(self) -> ErasureRetainStep | None:
        done = self._step(ExecutionStep.RETAIN)
        if done is None:
            return None
        return ErasureRetainStep(rows_resealed=int(done.get("resealed", 0)))

    @strawberry.field(description="The identifiers suppressed (erasure).")
    def suppress(self) -> ErasureSuppressStep | None:
        done = self._step(ExecutionStep.SUPPRESS)
        if done is None:
            return None
        return ErasureSuppressStep(identifiers_suppressed=int(done.get("suppressed", 0)))

    @strawberry.field(description="The keys destroyed (erasure).")
    def shred(self) -> ErasureShredStep | None:
        done = self._step(ExecutionStep.SHRED)
        if done is None:
            return None
        return ErasureShredStep(
            customer_key=bool(done.get("customer_key")),
            earlier_access_exports=int(done.get("earlier_exports", 0)),
            earlier_request_keys=int(done.get("earlier_request_keys", 0)),
        )

    @strawberry.field(description="The rows deleted (erasure).")
    def delete(self) -> ErasureDeleteStep | None:
        done = self._step(ExecutionStep.DELETE)
        if done is None:
            return None
        return ErasureDeleteStep(
            events=int(done.get("events", 0)),
            source_records=int(done.get("source_records", 0)),
            identities=int(done.get("identities", 0)),
            merged_profiles=int(done.get("merged_profiles", 0)),
            refused_values=int(done.get("refused_values", 0)),
            match_records=int(done.get("match_records", 0)),
            customer_deleted=bool(done.get("customer")),
        )

    @classmethod
    def of(cls, progress: dict[str, Any]) -> "Progress":
        steps = dict(progress.get("steps", {}))
        return cls(
            # Stored as JSON (keys unordered); the steps of each type run in this order.
            steps_done=[step for step in ExecutionStep if step.value in steps],
            legal_hold_id=_optional_id("LegalHold", progress.get("held_by")),
            steps=steps,
        )


# --------------------------------------------------------------------------- request


@strawberry.type(
    name="DataSubjectRequest",
    description="A data subject request: a person exercising a data protection right, from "
    "receipt to proof of completion.",
)
class DataSubjectRequestNode(Node):
    type: RequestType = strawberry.field(description="The right exercised.")
    jurisdiction: Jurisdiction = strawberry.field(
        description="The law it is handled under (sets the deadline)."
    )
    status: Status = strawberry.field(description="Where it is in the workflow.")
    filed_via: FiledVia = strawberry.field(description="Who filed it.")
    subject_kind: IdentifierKind = strawberry.field(
        description="The kind of identifier the requester gave (see `subject`)."
    )
    customer_id: strawberry.ID | None = strawberry.field(
        description="Global id of the customer the request is about (a Customer id); null "
        "while no customer matches the requester."
    )
    received_at: datetime = strawberry.field(
        description="When it was received; the legal clock starts here."
    )
    verified_at: datetime | None = strawberry.field(
        description="When the requester's identity was confirmed (null: not yet)."
    )
    completed_at: datetime | None = strawberry.field(
        description="When it was closed (completed, denied or cancelled); null while open."
    )
    verification_method: VerificationMethod | None = strawberry.field(
        description="How the identity was confirmed (null: not yet)."
    )
    due_at: datetime = strawberry.field(
        description="When the answer is due, counting the time spent waiting on the requester "
        "and any extension."
    )
    days_left: int | None = strawberry.field(
        description="Whole days to the due date; negative: late; null once closed."
    )
    overdue: bool = strawberry.field(description="Open and past its due date.")
    paused: bool = strawberry.field(
        description="The clock is stopped: the request waits on the requester."
    )
    extended: bool = strawberry.field(description="The one extension the law allows was used.")
    acknowledge_by: datetime | None = strawberry.field(
        description="When receipt must be confirmed (CCPA: 10 business days); null where the "
        "law asks for no confirmation."
    )
    assignee_id: strawberry.ID | None = strawberry.field(
        description="Global id of the staff member working on it (a StaffUser id); null: "
        "unassigned."
    )
    duplicate_of_id: strawberry.ID | None = strawberry.field(
        description="Global id of the earlier request this one repeats (a DataSubjectRequest "
        "id); a duplicate is closed and follows the original."
    )
    attention: Attention | None = strawberry.field(
        description="Set by the scheduled tick when it is due soon or overdue; cleared by an "
        "extension or when it closes (null: nothing to flag)."
    )
    row: strawberry.Private[DataSubjectRequest]

    @classmethod
    def from_row(cls, row: DataSubjectRequest) -> "DataSubjectRequestNode":
        clock = service.clock_of(row)
        now = clock_module.now()
        return cls(
            id=request_id(row.id),
            type=row.type,
            jurisdiction=row.jurisdiction,
            status=row.status,
            filed_via=row.filed_via,
            subject_kind=row.subject_kind,
            customer_id=_optional_id("Customer", row.customer_id),
            received_at=row.received_at,
            verified_at=row.verified_at,
            completed_at=row.completed_at,
            verification_method=row.verification_method,
            due_at=clock.due_at(now),
            days_left=None if row.status in FINAL else clock.days_left(now),
            overdue=row.status not in FINAL and clock.overdue(now),
            paused=clock.paused(),
            extended=row.extended,
            acknowledge_by=row.acknowledge_by,
            assignee_id=_optional_id("StaffUser", row.assignee_id),
            duplicate_of_id=_optional_id(TYPE_NAME, row.duplicate_of_id),
            attention=Attention(row.attention) if row.attention else None,
            row=row,
        )

    @strawberry.field(
        description="The customer the request is about; null while none matches the "
        "requester, and once the customer is erased. Reading it is audited like `customer`."
    )
    async def customer(self, info: Info[Any, Any]) -> CustomerNode | None:
        if self.row.customer_id is None:
            return None
        return await customer_node(info, self.row.customer_id)

    @strawberry.field(
        description="The staff member working on it; null: unassigned.",
        extensions=allow(*STAFF_READERS),
    )
    async def assignee(self, info: Info[Any, Any]) -> StaffUserNode | None:
        if self.row.assignee_id is None:
            return None
        return await staff_user_node(info, self.row.assignee_id)

    @strawberry.field(
        description="The earlier request this one repeats; null when none.",
        extensions=allow(*HANDLERS),
    )
    async def duplicate_of(self, info: Info[Any, Any]) -> "DataSubjectRequestNode | None":
        if self.row.duplicate_of_id is None:
            return None
        original = await info.context.loaders.get(loaders.requests_by_id).load(
            self.row.duplicate_of_id
        )
        return DataSubjectRequestNode.from_row(original) if original is not None else None

    @strawberry.field(
        description="The email or phone the requester gave (null once destroyed).",
        extensions=personal(PersonalData.IDENTIFIER),
    )
    async def subject(self, info: Info[Any, Any]) -> str | None:
        value: str | None = await info.context.loaders.get(
            loaders.subject_by_request, info.context.vault
        ).load(self.row)
        info.context.audit_read(
            [self.row.id], ["subject"], action="dsr.read", target_type="data_subject_request"
        )
        return value

    @strawberry.field(
        description="Why it was denied, cancelled, put on hold or failed (null when none). "
        "What staff wrote is stored sealed and is null once the request's key is destroyed; "
        "cdlm's own reasons name requests and legal holds by global id."
    )
    async def reason(self, info: Info[Any, Any]) -> str | None:
        found = await self._reasons(info)
        if not found.staff_reason:
            return shown_note(found.reason)
        if found.reason is not None:
            self._read_staff_text(info, "reason")
        return found.reason

    @strawberry.field(
        description="Why the deadline was extended (null when not extended, and once the "
        "request's key is destroyed)."
    )
    async def extension_reason(self, info: Info[Any, Any]) -> str | None:
        found = (await self._reasons(info)).extension_reason
        if found is not None:
            self._read_staff_text(info, "extensionReason")
        return found

    def _read_staff_text(self, info: Info[Any, Any], field: str) -> None:
        """What staff wrote about a request may name the person: reading it is a personal
        read (audited, and refused to staff held back from personal data)."""
        info.context.audit_read(
            [self.row.id], [field], action="dsr.read", target_type="data_subject_request"
        )

    async def _reasons(self, info: Info[Any, Any]) -> service.Reasons:
        loader = info.context.loaders.get(loaders.reasons_by_request, info.context.vault)
        found: service.Reasons = await loader.load(self.row)
        return found

    @strawberry.field(
        description="The status the requester sees (a duplicate shows its original's)."
    )
    async def public_status(self, info: Info[Any, Any]) -> PublicStatus:
        original = None
        if self.row.duplicate_of_id is not None:
            original = await info.context.loaders.get(loaders.requests_by_id).load(
                self.row.duplicate_of_id
            )
        return service.public_status(self.row, original)

    @strawberry.field(description="Every change, step and note, oldest first.")
    async def timeline(self, info: Info[Any, Any]) -> list[TimelineEntryNode]:
        entries = await info.context.loaders.get(
            loaders.timeline_by_request, info.context.vault
        ).load(self.row.id)
        if any(e.by_staff and e.note is not None for e in entries):
            self._read_staff_text(info, "timeline.note")
        return [TimelineEntryNode.of(e) for e in entries]

    @strawberry.field(description="What carrying it out has done so far, step by step.")
    def progress(self) -> Progress:
        return Progress.of(self.row.progress)

    @strawberry.field(
        description="The erasure certificate: null until an erasure request is completed "
        "(and for other types of request)."
    )
    def certificate(self) -> ErasureCertificate | None:
        body = self.row.certificate
        return ErasureCertificate.of(body) if body is not None else None


async def _fetch(info: Info[Any, Any], ids: list[uuid.UUID]) -> list[object | None]:
    rows = await info.context.loaders.get(loaders.requests_by_id).load_many(ids)
    return [DataSubjectRequestNode.from_row(row) if row is not None else None for row in rows]


#: How node(id:) fetches requests: with the roles of the `dataSubjectRequest` query.
REQUEST_NODE = NodeKind.of(TYPE_NAME, HANDLERS, _fetch)
