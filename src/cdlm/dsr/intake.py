"""Receiving data subject requests: self-service submission with a verification code, and
requests filed by staff on someone's behalf.

A self-service request names an email address or phone number; a 6-digit code goes there
(through the outbox) and only its argon2id hash is kept. It expires after 10 minutes and allows
5 attempts. Until it is verified the request waits on the requester, so its legal clock is
paused. Submission never says whether cdlm knows the person. Opt-outs of sale need no
verification (CCPA). A verified request that repeats an open one (same person, same type) is
linked to it and closed instead of running twice.
"""

from __future__ import annotations

import json
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.consent import service as consent
from cdlm.core import clock
from cdlm.core.errors import (
    ErrorCode,
    FieldIssue,
    InvalidStateTransition,
    RateLimited,
    ValidationFailed,
)
from cdlm.core.identifiers import Identifier, IdentifierKind, InvalidIdentifier, parse
from cdlm.core.jurisdictions import RULES, Jurisdiction
from cdlm.core.locks import lock_names
from cdlm.core.principal import ANONYMOUS, Principal
from cdlm.core.text import text_problem
from cdlm.customers import service as customers
from cdlm.dsr import outbox
from cdlm.dsr.deadlines import RequestClock
from cdlm.dsr.models import (
    DataSubjectRequest,
    FiledVia,
    RequestType,
    TimelineKind,
    VerificationCode,
    VerificationMethod,
)
from cdlm.dsr.notifier import Notifier
from cdlm.dsr.service import (
    CHANNELS,
    OPEN,
    NewTimelineEntry,
    add_event,
    keep_clock,
    locked,
    move,
    notify_requester,
    public_status_now,
    requester,
    set_reason,
    subject_json,
)
from cdlm.dsr.workflow import PublicStatus, Status
from cdlm.idempotency import service as idempotency
from cdlm.identity import service as identity
from cdlm.quality.fields import PROFILE_FIELDS
from cdlm.quality.validate import validate_profile
from cdlm.ratelimit import service as ratelimit
from cdlm.vault.service import Vault

CODE_TTL = timedelta(minutes=10)
CODE_ATTEMPTS = 5
#: Wrong codes a request may see in all (across resent codes) before it is locked.
REQUEST_ATTEMPTS = 10
MAX_NOTE = 2000
MAX_PURPOSES = 50
SUBMIT_PER_ADDRESS = ratelimit.Limit(attempts=10, window=timedelta(hours=1))
SUBMIT_PER_IDENTIFIER = ratelimit.Limit(attempts=5, window=timedelta(days=1))
VERIFY_PER_ADDRESS = ratelimit.Limit(attempts=30, window=timedelta(minutes=15))
RESEND_PER_REQUEST = ratelimit.Limit(attempts=3, window=timedelta(hours=1))
_CODE_METHODS = {
    IdentifierKind.EMAIL: VerificationMethod.EMAIL_CODE,
    IdentifierKind.PHONE: VerificationMethod.SMS_CODE,
}


@dataclass(frozen=True)
class Details:
    """What a request asks for beyond its type."""

    corrections: dict[str, str | None] = field(default_factory=dict)  # rectification
    purposes: list[str] = field(default_factory=list)  # objection (none: all objectable)
    note: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"corrections": self.corrections, "purposes": self.purposes, "note": self.note}


@dataclass(frozen=True)
class Subject:
    """Who the request is about, as the requester identified themselves."""

    kind: IdentifierKind
    value: str


@dataclass(frozen=True)
class Submitted:
    """A received request and, for a self-service one, when its code expires."""

    request_id: uuid.UUID
    status: Status
    public_status: PublicStatus
    verification_expires_at: datetime | None
    replayed: bool = False


@dataclass(frozen=True)
class Received:
    """What a submission's transaction made: the request and, for a self-service one that
    waits for verification, when its code expires."""

    request_id: uuid.UUID
    verification_expires_at: datetime | None

    def to_json(self) -> dict[str, Any]:
        """As remembered for idempotent replays."""
        expires = self.verification_expires_at
        return {
            "request": str(self.request_id),
            "expires": expires.isoformat() if expires else None,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Received:
        expires = data["expires"]
        return cls(uuid.UUID(data["request"]), datetime.fromisoformat(expires) if expires else None)


# ------------------------------------------------------------------------ checking input


def _identifier(subject: Subject, path: str) -> Identifier:
    try:
        return parse(subject.kind, subject.value)
    except InvalidIdentifier as error:
        raise ValidationFailed(error.message, field=path, code=error.code) from None


async def check_details(request_type: RequestType, details: Details) -> list[FieldIssue]:
    """Problems with what the request asks for (all of them, with input paths)."""
    issues: list[FieldIssue] = []
    if details.note is not None:
        problem = text_problem(details.note)
        if problem is not None:
            issues.append(FieldIssue("input.note", ErrorCode.INVALID_FORMAT, problem))
        elif len(details.note) > MAX_NOTE:
            issues.append(
                FieldIssue("input.note", ErrorCode.TOO_LONG, f"At most {MAX_NOTE} characters.")
            )
    if request_type is RequestType.RECTIFICATION:
        if not details.corrections:
            issues.append(
                FieldIssue("input.corrections", ErrorCode.REQUIRED, "Say what to correct.")
            )
        unknown = set(details.corrections) - set(PROFILE_FIELDS)
        if unknown:
            raise ValueError(f"unknown profile fields: {sorted(unknown)}")
        setting = {k: v for k, v in details.corrections.items() if v is not None}
        issues.extend(validate_profile(setting, prefix="input.corrections").issues)
    elif details.corrections:
        issues.append(
            FieldIssue(
                "input.corrections", ErrorCode.VALIDATION, "Only rectification takes corrections."
            )
        )
    if request_type is RequestType.OBJECTION:
        if len(details.purposes) > MAX_PURPOSES:
            issues.append(
                FieldIssue("input.purposes", ErrorCode.TOO_MANY_ITEMS, f"At most {MAX_PURPOSES}.")
            )
        known = {p.code for p in await consent.all_purposes()}
        issues.extend(
            FieldIssue(f"input.purposes.{n}", ErrorCode.NOT_FOUND, "No purpose has this code.")
            for n, code in enumerate(details.purposes)
            if code not in known
        )
    elif details.purposes:
        issues.append(
            FieldIssue("input.purposes", ErrorCode.VALIDATION, "Only an objection names purposes.")
        )
    return issues


def details_index(vault: Vault, details: Details) -> str:
    """Keyed digest of what a request asks for: equal requests have equal digests."""
    canonical = json.dumps(details.to_json(), sort_keys=True, separators=(",", ":"))
    return vault.blind_index("dsr-details", canonical)


# ------------------------------------------------------------------------ creating


async def _create(
    vault: Vault,
    settings: Settings,
    actor: Principal,
    request_type: RequestType,
    jurisdiction: Jurisdiction,
    identifier: Identifier,
    details: Details,
    filed_via: FiledVia,
    received_at: datetime,
) -> DataSubjectRequest:
    """A new request in RECEIVED with its own data key (in the caller's transaction)."""
    request_id = uuid.uuid4()
    key = await vault.create_customer_key(request_id)
    rule = settings.dsr_clocks.get(jurisdiction, RULES[jurisdiction])
    started = RequestClock(received_at, jurisdiction, custom_rule=rule)
    request = DataSubjectRequest(
        id=request_id,
        type=request_type,
        jurisdiction=jurisdiction,
        status=Status.RECEIVED,
        filed_via=filed_via,
        subject_kind=identifier.kind,
        subject_index=vault.blind_index(identifier.index_kind, identifier.value),
        subject_sealed=vault.seal(key, request_id, "subject", subject_json(identifier)),
        details_sealed=vault.seal(key, request_id, "details", details.to_json()),
        received_at=received_at,
        updated_at=clock.now(),
        clock_rule=rule.to_json(),
        acknowledge_by=started.acknowledge_by(),
        filed_by_kind=actor.kind.value,
        filed_by_id=actor.id,
        progress={"details_index": details_index(vault, details)},
    )
    keep_clock(request, started, clock.now())
    await request.save()
    await add_event(
        actor, request, NewTimelineEntry(TimelineKind.RECEIVED, f"filed via {filed_via.value}")
    )
    await audit.record(
        actor, "dsr.submit", target_type="data_subject_request", target_id=request_id
    )
    if started.acknowledge_by() is not None:
        await notify_requester(vault, request, "request_received")
    return request


async def _new_code(vault: Vault, auth: AuthSettings, request: DataSubjectRequest) -> datetime:
    """Replace the request's codes with a fresh one and queue it to the requester."""
    code = f"{secrets.randbelow(1_000_000):06d}"
    now = clock.now()
    expires_at = now + CODE_TTL
    await VerificationCode.filter(request_id=request.id).delete()
    await VerificationCode.create(
        id=uuid.uuid4(),
        request_id=request.id,
        code_hash=await auth.hasher.hash_async(code),
        created_at=now,
        expires_at=expires_at,
        max_attempts=CODE_ATTEMPTS,
    )
    await notify_requester(
        vault,
        request,
        "verification_code",
        code=code,
        minutes=str(int(CODE_TTL.total_seconds() // 60)),
    )
    request.progress = {**request.progress, "verification_expires_at": expires_at.isoformat()}
    await request.save(update_fields=["progress"])
    return expires_at


async def _count(auth: AuthSettings, purpose: str, value: str, limit: ratelimit.Limit) -> None:
    if await ratelimit.count_attempt(auth.keyed_digest(purpose, value), limit) > limit.attempts:
        raise RateLimited("Too many requests; try again later.", field="input")


@dataclass(frozen=True)
class RequestSubmission:
    """A request a data subject submits themselves, and the address it came from (for rate
    limits)."""

    type: RequestType
    subject: Subject
    details: Details = field(default_factory=Details)
    jurisdiction: Jurisdiction | None = None
    client_address: str | None = None


async def submit(
    vault: Vault,
    auth: AuthSettings,
    settings: Settings,
    notifier: Notifier,
    submission: RequestSubmission,
    idempotency_key: str | None = None,
) -> Submitted:
    """A self-service request (no login). It waits for the code sent to the requester, except
    an opt-out of sale, which needs no verification."""
    request_type, subject, details = submission.type, submission.subject, submission.details
    client_address = submission.client_address
    if subject.kind not in CHANNELS:
        raise ValidationFailed(
            "Give an email address or phone number: the code is sent there.",
            field="input.identifier.kind",
        )
    identifier = _identifier(subject, "input.identifier.value")
    issues = await check_details(request_type, details)
    if issues:
        raise ValidationFailed.from_issues(issues)
    await vault.ready()
    subject_index = vault.blind_index(identifier.index_kind, identifier.value)
    await _count(auth, "dsr-submit-address", client_address or "unknown", SUBMIT_PER_ADDRESS)
    await _count(auth, "dsr-submit-identifier", subject_index, SUBMIT_PER_IDENTIFIER)
    chosen = submission.jurisdiction or settings.dsr_default_jurisdiction

    async def run() -> Received:
        request = await _create(
            vault,
            settings,
            ANONYMOUS,
            request_type,
            chosen,
            identifier,
            details,
            FiledVia.SELF_SERVICE,
            clock.now(),
        )
        if request_type is RequestType.OPT_OUT_OF_SALE:
            await _verified(vault, request, ANONYMOUS, VerificationMethod.NOT_REQUIRED)
            return Received(request.id, None)
        await move(request, Status.IDENTITY_PENDING, ANONYMOUS, note="code sent")
        return Received(request.id, await _new_code(vault, auth, request))

    fingerprint = idempotency.fingerprint(
        [request_type.value, subject_index, chosen.value, details.to_json()]
    )
    outcome = await idempotency.run_once(
        vault,
        f"submitDataSubjectRequest:{subject_index}",
        idempotency_key,
        fingerprint,
        run,
        idempotency.Codec(Received.to_json, Received.from_json),
    )
    received = outcome.result
    await outbox.deliver_pending(vault, notifier, [received.request_id])
    request = await DataSubjectRequest.get(id=received.request_id)
    return Submitted(
        received.request_id,
        request.status,
        await public_status_now(request),
        received.verification_expires_at,
        outcome.replayed,
    )


async def resend_code(
    vault: Vault,
    auth: AuthSettings,
    notifier: Notifier,
    request_id: uuid.UUID,
    client_address: str | None,
) -> datetime:
    """A new code for a request still waiting for verification (the old one stops working)."""
    await _count(auth, "dsr-submit-address", client_address or "unknown", SUBMIT_PER_ADDRESS)
    await _count(auth, "dsr-resend-request", str(request_id), RESEND_PER_REQUEST)
    await vault.ready()
    async with in_transaction():
        request = await locked(request_id, field="input.requestId")
        if request.status is not Status.IDENTITY_PENDING:
            raise InvalidStateTransition(
                "This request is not waiting for verification.", field="input.requestId"
            )
        if _failures(request) >= REQUEST_ATTEMPTS:
            raise RateLimited(
                "Too many wrong codes for this request; submit a new one.", field="input.requestId"
            )
        expires_at = await _new_code(vault, auth, request)
        await add_event(ANONYMOUS, request, NewTimelineEntry(TimelineKind.CODE_RESENT))
    await outbox.deliver_pending(vault, notifier, [request_id])
    return expires_at


async def verify(
    vault: Vault,
    auth: AuthSettings,
    request_id: uuid.UUID,
    code: str,
    client_address: str | None,
) -> DataSubjectRequest:
    """Check the requester's code. A wrong code costs one of its attempts (and nothing else
    changes); an expired or used-up code must be replaced with :func:`resend_code`."""
    await _count(auth, "dsr-verify-address", client_address or "unknown", VERIFY_PER_ADDRESS)
    candidate = code.strip()
    await vault.ready()
    failure: ValidationFailed | RateLimited | None = None
    async with in_transaction():
        request = await locked(request_id, field="input.requestId")
        if request.status is not Status.IDENTITY_PENDING:
            raise InvalidStateTransition(
                "This request is not waiting for verification.", field="input.requestId"
            )
        sent = await VerificationCode.filter(request_id=request.id, used_at__isnull=True).first()
        now = clock.now()
        if sent is None or sent.expires_at <= now:
            raise ValidationFailed(
                "The code has expired; ask for a new one.",
                field="input.code",
                code=ErrorCode.CODE_EXPIRED,
            )
        if sent.attempts >= sent.max_attempts or _failures(request) >= REQUEST_ATTEMPTS:
            raise RateLimited("Too many wrong codes; ask for a new one.", field="input.code")
        if len(candidate) == 6 and candidate.isdigit():
            matches = await auth.hasher.verify_async(sent.code_hash, candidate)
        else:
            matches = False
        if not matches:
            sent.attempts += 1
            await sent.save(update_fields=["attempts"])
            request.progress = {**request.progress, "failed_codes": _failures(request) + 1}
            await request.save(update_fields=["progress"])
            left = min(sent.max_attempts - sent.attempts, REQUEST_ATTEMPTS - _failures(request))
            failed = NewTimelineEntry(TimelineKind.VERIFICATION_FAILED, f"{left} left")
            await add_event(ANONYMOUS, request, failed)
            failure = (
                RateLimited("Too many wrong codes; ask for a new one.", field="input.code")
                if left == 0
                else ValidationFailed(
                    f"The code is wrong ({left} attempts left).",
                    field="input.code",
                    code=ErrorCode.WRONG_CODE,
                )
            )
        else:
            sent.used_at = now
            await sent.save(update_fields=["used_at"])
            await _verified(vault, request, ANONYMOUS, _CODE_METHODS[request.subject_kind])
    if failure is not None:
        raise failure  # after the commit: the attempt stays counted
    return request


def _failures(request: DataSubjectRequest) -> int:
    return int(request.progress.get("failed_codes", 0))


async def _verified(
    vault: Vault, request: DataSubjectRequest, actor: Principal, method: VerificationMethod
) -> None:
    """Mark the identity verified, find the customer, and link a duplicate."""
    now = clock.now()
    request.verified_at = now
    request.verification_method = method
    if request.customer_id is None:
        request.customer_id = await match_customer(vault, request)
    await move(request, Status.VERIFIED, actor, note=f"verified by {method.value}")
    await _link_duplicate(request, actor)


async def match_customer(vault: Vault, request: DataSubjectRequest) -> uuid.UUID | None:
    """The customer the requester's identifier belongs to now (None: unknown, destroyed, or
    shared by customers kept apart: then staff name the customer)."""
    asked = await requester(vault, request)
    if asked is None or await identity.shared(request.subject_index):
        return None
    found = await identity.owners(vault, [asked.identifier])
    return found.get(asked.identifier)


async def _link_duplicate(request: DataSubjectRequest, actor: Principal) -> None:
    """Close ``request`` as a duplicate of an open one for the same person, right and
    details. An unverified request (an opt-out) is never linked: that would tell anyone
    who names a person whether they have a request open."""
    if request.verification_method is VerificationMethod.NOT_REQUIRED:
        return
    await lock_names([f"dsr-subject:{request.subject_index}:{request.type.value}"])
    same_person = {"subject_index": request.subject_index}
    candidates = DataSubjectRequest.filter(
        type=request.type,
        status__in=list(OPEN - {Status.RECEIVED, Status.IDENTITY_PENDING}),
        duplicate_of_id__isnull=True,
    ).exclude(id=request.id)
    same_details = request.progress.get("details_index")
    found = await candidates.filter(**same_person).order_by("received_at")
    if request.customer_id is not None:
        found += await candidates.filter(customer_id=request.customer_id).order_by("received_at")
    original = next((r for r in found if r.progress.get("details_index") == same_details), None)
    if original is None:
        return
    request.duplicate_of_id = original.id
    set_reason(request, own=f"Duplicate of request {original.id}.")
    await move(request, Status.CANCELLED, actor, note=request.reason)
    await add_event(
        actor, original, NewTimelineEntry(TimelineKind.DUPLICATE_LINKED, f"request {request.id}")
    )


# ------------------------------------------------------------------------ staff filing


@dataclass(frozen=True)
class Filing:
    """A request a staff member files on the requester's behalf."""

    type: RequestType
    subject: Subject
    verification_method: VerificationMethod
    details: Details = field(default_factory=Details)
    jurisdiction: Jurisdiction | None = None
    customer_id: uuid.UUID | None = None
    received_at: datetime | None = None


async def file_request(
    actor: Principal,
    vault: Vault,
    settings: Settings,
    notifier: Notifier,
    filing: Filing,
    idempotency_key: str | None = None,
) -> Submitted:
    """A request received by letter, phone or in person, with how the identity was checked."""
    identifier = _identifier(filing.subject, "input.identifier.value")
    issues = await check_details(filing.type, filing.details)
    if filing.verification_method is VerificationMethod.NOT_REQUIRED and (
        filing.type is not RequestType.OPT_OUT_OF_SALE
    ):
        issues.append(
            FieldIssue(
                "input.verificationMethod",
                ErrorCode.POLICY_VIOLATION,
                "Only an opt-out of sale may go unverified.",
            )
        )
    now = clock.now()
    received_at = filing.received_at or now
    if received_at.tzinfo is None:
        issues.append(FieldIssue("input.receivedAt", ErrorCode.INVALID_FORMAT, "Give a zone."))
    elif received_at > now + timedelta(minutes=5):
        issues.append(FieldIssue("input.receivedAt", ErrorCode.IMPLAUSIBLE, "In the future."))
    elif received_at < now - timedelta(days=366):
        issues.append(
            FieldIssue("input.receivedAt", ErrorCode.IMPLAUSIBLE, "More than a year ago.")
        )
    if issues:
        raise ValidationFailed.from_issues(issues)
    await vault.ready()
    if filing.customer_id is not None:
        if not await customers.exists(filing.customer_id):
            raise ValidationFailed("No customer has this id.", field="input.customerId")
        owner = (await identity.owners(vault, [identifier])).get(identifier)
        if (
            owner is not None
            and owner != filing.customer_id
            and not await identity.kept_apart(
                vault.blind_index(identifier.index_kind, identifier.value), filing.customer_id
            )
        ):
            raise ValidationFailed(
                "The identifier belongs to another customer.",
                field="input.customerId",
                code=ErrorCode.IDENTITY_CONFLICT,
            )
    chosen = filing.jurisdiction or settings.dsr_default_jurisdiction

    async def run() -> uuid.UUID:
        request = await _create(
            vault,
            settings,
            actor,
            filing.type,
            chosen,
            identifier,
            filing.details,
            FiledVia.STAFF,
            min(received_at, clock.now()),
        )
        request.customer_id = filing.customer_id
        await _verified(vault, request, actor, filing.verification_method)
        return request.id

    fingerprint = idempotency.fingerprint(
        [
            filing.type.value,
            vault.blind_index(identifier.index_kind, identifier.value),
            chosen.value,
            filing.details.to_json(),
            filing.verification_method.value,
            str(filing.customer_id),
            # What was sent: a retry that leaves receivedAt out is the same request.
            filing.received_at.isoformat() if filing.received_at else None,
        ]
    )
    outcome = await idempotency.run_once(
        vault,
        idempotency.scope_for("fileDataSubjectRequest", actor),
        idempotency_key,
        fingerprint,
        run,
        idempotency.Codec(_filed_json, _filed_of),
    )
    request_id = outcome.result
    await outbox.deliver_pending(vault, notifier, [request_id])
    request = await DataSubjectRequest.get(id=request_id)
    return Submitted(
        request_id, request.status, await public_status_now(request), None, outcome.replayed
    )


def _filed_json(request_id: uuid.UUID) -> dict[str, Any]:
    """A filed request's id, as remembered for idempotent replays."""
    return {"request": str(request_id)}


def _filed_of(remembered: dict[str, Any]) -> uuid.UUID:
    return uuid.UUID(remembered["request"])
