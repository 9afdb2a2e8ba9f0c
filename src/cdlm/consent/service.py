"""Consent rules: the purposes catalog, recording decisions, and asking whether data may be used.

Every decision is appended to the ledger, never changed: the current consent for a purpose is
the latest entry, and the consent at any past moment is the latest entry before it. Before any
decision the purpose's mechanism applies (opt-in: no; opt-out and notice-only: yes).
"""

from __future__ import annotations

import functools
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Set
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from tortoise.connection import get_connection
from tortoise.exceptions import IntegrityError
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.consent.models import ConsentEntry, Decision, Mechanism, Method, Purpose, PurposeNotice
from cdlm.core import chain, clock
from cdlm.core.errors import (
    Conflict,
    ErrorCode,
    FieldIssue,
    NotFound,
    PolicyViolation,
    ValidationFailed,
)
from cdlm.core.principal import Principal
from cdlm.core.stripes import StripedTable, check_all, stripe_of
from cdlm.core.text import text_problem
from cdlm.core.vocabulary import LawfulBasis
from cdlm.customers import service as customers
from cdlm.db.reads import primary_reads
from cdlm.idempotency import service as idempotency
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import Vault

#: The ledger's stripes: a customer's decisions form one chain, locked by a writer after the
#: customer's row (a merge and an unmerge lock their two customers' stripes together).
LEDGER = StripedTable("consent", "consent_entries")
CODE = re.compile(r"[a-z][a-z0-9_.-]{1,63}")
CHANNEL = re.compile(r"[a-z][a-z0-9_-]{0,31}")
MAX_NOTICE = 20_000
FUTURE_TOLERANCE = timedelta(minutes=5)
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)
MAX_NAME = 200
#: Recipients a purpose may name, and the length of each (a name or a category).
MAX_RECIPIENTS = 50
MAX_RECIPIENT = 200


class StaleNotice(PolicyViolation):
    """Consent was given to a notice version that is no longer the current one."""

    code = ErrorCode.STALE_NOTICE_VERSION


class ObjectionInForce(PolicyViolation):
    """A grant after the person objected (or opted out by request or GPC) without their own
    action."""

    code = ErrorCode.OBJECTION_IN_FORCE


class ProcessingRestricted(PolicyViolation):
    """The customer's processing is restricted (GDPR Art. 18)."""

    code = ErrorCode.PROCESSING_RESTRICTED


#: How decisions that stop processing at the person's demand are captured: a data subject
#: request (objection, opt-out of sale) or a Global Privacy Control signal.
OBJECTING_METHODS = frozenset({Method.REQUEST, Method.GPC})
#: How a decision the person made themselves is captured (with evidence of it).
PERSONAL_METHODS = frozenset({Method.FORM})


def personal_action(capture: Capture) -> bool:
    """True when ``capture`` shows the person's own action: a personal method, with evidence."""
    return capture.method in PERSONAL_METHODS and (
        capture.user_agent is not None or capture.ip_address is not None
    )


@functools.cache
def _taxonomy() -> tuple[frozenset[str], frozenset[str]]:
    """fideslang's default data uses and data categories (loaded on first use)."""
    from fideslang.default_taxonomy import DEFAULT_TAXONOMY

    uses = frozenset(item.fides_key for item in DEFAULT_TAXONOMY.data_use)
    categories = frozenset(item.fides_key for item in DEFAULT_TAXONOMY.data_category)
    return uses, categories


# --------------------------------------------------------------------------- purposes


def _purpose_issues(
    *, data_use: str | None, data_categories: list[str] | None, notice: str | None
) -> list[FieldIssue]:
    uses, categories = _taxonomy()
    issues = []
    if data_use is not None and data_use not in uses:
        issues.append(
            FieldIssue("input.dataUse", ErrorCode.UNKNOWN_CODE, "Not a fideslang data use.")
        )
    for position, key in enumerate(data_categories or []):
        if key not in categories:
            issues.append(
                FieldIssue(
                    f"input.dataCategories.{position}",
                    ErrorCode.UNKNOWN_CODE,
                    "Not a fideslang data category.",
                )
            )
    if notice is not None and not notice.strip():
        issues.append(FieldIssue("input.noticeText", ErrorCode.REQUIRED, "The notice is empty."))
    if notice is not None and len(notice) > MAX_NOTICE:
        issues.append(
            FieldIssue("input.noticeText", ErrorCode.TOO_LONG, f"At most {MAX_NOTICE} characters.")
        )
    return issues


def clean_recipients(recipients: list[str]) -> tuple[list[str], list[FieldIssue]]:
    """Recipients as stored (trimmed, repeats dropped, in the order given) and the problems of
    the list: at most ``MAX_RECIPIENTS``, each 1 to ``MAX_RECIPIENT`` characters of text that
    can be stored."""
    issues = []
    if len(recipients) > MAX_RECIPIENTS:
        issues.append(
            FieldIssue(
                "input.recipients",
                ErrorCode.TOO_MANY_ITEMS,
                f"At most {MAX_RECIPIENTS} recipients; name categories of recipients instead.",
            )
        )
    kept: list[str] = []
    for position, given in enumerate(recipients[:MAX_RECIPIENTS]):
        field = f"input.recipients.{position}"
        text = given.strip()
        problem = text_problem(text)
        if problem is not None:
            issues.append(FieldIssue(field, ErrorCode.INVALID_FORMAT, problem))
        elif not text:
            issues.append(FieldIssue(field, ErrorCode.REQUIRED, "A recipient needs a name."))
        elif len(text) > MAX_RECIPIENT:
            issues.append(
                FieldIssue(field, ErrorCode.TOO_LONG, f"At most {MAX_RECIPIENT} characters.")
            )
        elif text not in kept:
            kept.append(text)
    return kept, issues


#: Why a purpose that sells or shares data must name who receives it (GDPR Art. 13(1)(e),
#: 15(1)(c); CCPA: the categories of third parties).
RECIPIENTS_REQUIRED = (
    "A purpose that sells or shares data names its recipients (names or categories, e.g. "
    "'advertising partners')."
)


@dataclass(frozen=True)
class PurposeDefinition:
    """A new purpose: what it is, the basis and mechanism it rests on, the data it uses and
    who receives it (names or categories), and the text of its first notice."""

    code: str
    name: str
    description: str
    lawful_basis: LawfulBasis
    mechanism: Mechanism
    data_use: str
    data_categories: list[str]
    sale_or_sharing: bool
    notice_text: str
    recipients: list[str] | None = None


async def create_purpose(actor: Principal, definition: PurposeDefinition) -> Purpose:
    """Add a purpose with its first notice version; a purpose that sells or shares data must
    name at least one recipient."""
    issues = _purpose_issues(
        data_use=definition.data_use,
        data_categories=definition.data_categories,
        notice=definition.notice_text,
    )
    kept, recipient_issues = clean_recipients(definition.recipients or [])
    issues.extend(recipient_issues)
    if definition.sale_or_sharing and not kept and not recipient_issues:
        issues.append(FieldIssue("input.recipients", ErrorCode.REQUIRED, RECIPIENTS_REQUIRED))
    if not CODE.fullmatch(definition.code):
        issues.insert(
            0,
            FieldIssue(
                "input.code", ErrorCode.INVALID_FORMAT, "Codes are lower-case, e.g. newsletter."
            ),
        )
    if not definition.name.strip():
        issues.append(FieldIssue("input.name", ErrorCode.REQUIRED, "A purpose needs a name."))
    elif len(definition.name.strip()) > MAX_NAME:
        issues.append(FieldIssue("input.name", ErrorCode.TOO_LONG, "At most 200 characters."))
    if len(definition.description) > MAX_NOTICE:
        issues.append(
            FieldIssue("input.description", ErrorCode.TOO_LONG, f"At most {MAX_NOTICE} characters.")
        )
    if (definition.mechanism is Mechanism.OPT_IN) != (
        definition.lawful_basis is LawfulBasis.CONSENT
    ):
        issues.append(
            FieldIssue(
                "input.mechanism",
                ErrorCode.POLICY_VIOLATION,
                "Consent is given, never assumed: a purpose resting on consent is opt-in, and "
                "an opt-in purpose rests on consent.",
            )
        )
    if issues:
        raise ValidationFailed.from_issues(issues)
    if await Purpose.exists(code=definition.code):
        raise Conflict("A purpose with this code exists.", field="input.code")
    now = clock.now()
    try:
        purpose = await _create_purpose_rows(actor, definition, kept, now)
    except IntegrityError:
        raise Conflict("A purpose with this code exists.", field="input.code") from None
    return purpose


async def _create_purpose_rows(
    actor: Principal, definition: PurposeDefinition, recipients: list[str], now: datetime
) -> Purpose:
    """The purpose and its first notice (``recipients`` as cleaned), audited."""
    async with in_transaction():
        purpose = await Purpose.create(
            id=uuid.uuid4(),
            code=definition.code,
            name=definition.name.strip(),
            description=definition.description.strip(),
            lawful_basis=definition.lawful_basis,
            mechanism=definition.mechanism,
            data_use=definition.data_use,
            data_categories=sorted(set(definition.data_categories)),
            sale_or_sharing=definition.sale_or_sharing,
            recipients=recipients,
            current_version=1,
            created_at=now,
            updated_at=now,
        )
        await PurposeNotice.create(
            id=uuid.uuid4(), purpose=purpose, version=1, text=definition.notice_text, created_at=now
        )
        await audit.record(actor, "purpose.create", target_type="purpose", target_id=purpose.id)
    return purpose


@dataclass(frozen=True)
class PurposeChange:
    """A change to a purpose: what is None is kept; ``recipients`` replaces the list; a new
    notice text becomes a new version."""

    purpose_id: uuid.UUID
    name: str | None = None
    description: str | None = None
    data_categories: list[str] | None = None
    notice_text: str | None = None
    recipients: list[str] | None = None


async def update_purpose(actor: Principal, change: PurposeChange) -> Purpose:
    """Change a purpose; a new notice text becomes a new version (old versions are kept).
    What is None is kept; ``recipients`` replaces the list (a purpose that sells or shares
    data keeps at least one)."""
    name, description, recipients = change.name, change.description, change.recipients
    issues = _purpose_issues(
        data_use=None, data_categories=change.data_categories, notice=change.notice_text
    )
    kept, recipient_issues = clean_recipients(recipients or [])
    issues.extend(recipient_issues)
    if name is not None and not name.strip():
        issues.append(FieldIssue("input.name", ErrorCode.REQUIRED, "A purpose needs a name."))
    elif name is not None and len(name.strip()) > MAX_NAME:
        issues.append(FieldIssue("input.name", ErrorCode.TOO_LONG, "At most 200 characters."))
    if description is not None and len(description) > MAX_NOTICE:
        issues.append(
            FieldIssue("input.description", ErrorCode.TOO_LONG, f"At most {MAX_NOTICE} characters.")
        )
    if issues:
        raise ValidationFailed.from_issues(issues)
    async with in_transaction():
        purpose = await Purpose.filter(id=change.purpose_id).select_for_update().first()
        if purpose is None:
            raise NotFound("No purpose has this id.", field="input.id")
        now = clock.now()
        if name is not None:
            purpose.name = name.strip()
        if description is not None:
            purpose.description = description.strip()
        if change.data_categories is not None:
            purpose.data_categories = sorted(set(change.data_categories))
        if recipients is not None:
            if purpose.sale_or_sharing and not kept:
                raise ValidationFailed(
                    RECIPIENTS_REQUIRED, field="input.recipients", code=ErrorCode.REQUIRED
                )
            purpose.recipients = kept
        if change.notice_text is not None:
            current = await PurposeNotice.get(
                purpose_id=purpose.id, version=purpose.current_version
            )
            if current.text != change.notice_text:
                purpose.current_version += 1
                await PurposeNotice.create(
                    id=uuid.uuid4(),
                    purpose=purpose,
                    version=purpose.current_version,
                    text=change.notice_text,
                    created_at=now,
                )
        purpose.updated_at = now
        await purpose.save()
        await audit.record(actor, "purpose.update", target_type="purpose", target_id=purpose.id)
    return purpose


async def all_purposes() -> list[Purpose]:
    """Every purpose, by code."""
    return list(await Purpose.all().order_by("code"))


async def purpose(code: str) -> Purpose:
    """The purpose with ``code``; :class:`NotFound` when there is none."""
    found = await Purpose.get_or_none(code=code)
    if found is None:
        raise NotFound("No purpose has this code.", field="purposeCode")
    return found


async def notices_of(purpose_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[PurposeNotice]]:
    """Each purpose's notice versions, oldest first (one query)."""
    found: dict[uuid.UUID, list[PurposeNotice]] = {p: [] for p in purpose_ids}
    for row in await PurposeNotice.filter(purpose_id__in=purpose_ids).order_by("version"):
        found[row.purpose_id].append(row)  # type: ignore[attr-defined]
    return found


async def _purposes_by_code(codes: Iterable[str], field: str) -> dict[str, Purpose]:
    wanted = set(codes)
    found = {p.code: p for p in await Purpose.filter(code__in=list(wanted))}
    missing = sorted(wanted - set(found))
    if missing:
        raise NotFound("No purpose has this code.", field=field)
    return found


# ---------------------------------------------------------------------------- ledger


def content_of(entry: ConsentEntry) -> dict[str, Any]:
    """What an entry's hash covers (besides the previous hash and the key id)."""
    content: dict[str, Any] = {
        "id": str(entry.id),
        "customer_id": str(entry.customer_id),
        "purpose_id": str(entry.purpose_id),  # type: ignore[attr-defined]
        "decision": entry.decision.value,
        "notice_version": entry.notice_version,
        "method": entry.method.value,
        "channel": entry.channel,
        "decided_at": entry.decided_at.isoformat(),
        "recorded_at": entry.recorded_at.isoformat(),
        "evidence": bytes(entry.evidence_sealed).hex() if entry.evidence_sealed else None,
        "actor_kind": entry.actor_kind,
        "actor_id": str(entry.actor_id) if entry.actor_id else None,
    }
    # An entry of stripe 0 hashes as entries did before striping; the others cover their stripe.
    if entry.stripe:
        content["stripe"] = entry.stripe
    return content


def stripe_of_customer(customer_id: uuid.UUID) -> int:
    """The stripe of a customer's decisions (stable: one person's history is one chain)."""
    return stripe_of(str(customer_id))


def sign(entry: ConsentEntry) -> None:
    """Give ``entry`` (its ``prev_hash`` set) its key id and keyed hash (the ledger key)."""
    entry.key_id, entry.hash = chain.keyring().sign(content_of(entry), entry.prev_hash)


@dataclass(frozen=True)
class Choice:
    """One decision about one purpose, as captured."""

    purpose_code: str
    decision: Decision
    notice_version: int | None = None


@dataclass(frozen=True)
class Capture:
    """How and where decisions were captured (evidence is stored sealed)."""

    method: Method
    channel: str = "web"
    decided_at: datetime | None = None
    user_agent: str | None = None
    ip_address: str | None = None


def _check_capture(capture: Capture) -> list[FieldIssue]:
    issues = []
    if not CHANNEL.fullmatch(capture.channel):
        issues.append(
            FieldIssue("input.channel", ErrorCode.INVALID_FORMAT, "Channels are codes, e.g. web.")
        )
    if capture.decided_at is not None:
        if capture.decided_at.tzinfo is None:
            issues.append(
                FieldIssue("input.decidedAt", ErrorCode.INVALID_FORMAT, "Give a time zone.")
            )
        elif capture.decided_at > clock.now() + FUTURE_TOLERANCE:
            issues.append(
                FieldIssue("input.decidedAt", ErrorCode.IMPLAUSIBLE, "It is in the future.")
            )
        elif capture.decided_at < EARLIEST:
            issues.append(
                FieldIssue("input.decidedAt", ErrorCode.IMPLAUSIBLE, "It is before 1990.")
            )
    if capture.user_agent is not None and len(capture.user_agent) > 512:
        issues.append(
            FieldIssue("input.evidence.userAgent", ErrorCode.TOO_LONG, "At most 512 characters.")
        )
    return issues


@dataclass(frozen=True)
class SaleOptOut:
    """Opt out of every sale/sharing and targeted advertising purpose (a Global Privacy
    Control signal, a request to opt out of sale)."""


@dataclass(frozen=True)
class Objection:
    """Object (GDPR Art. 21) to the named purposes, or when none are named to every
    direct-marketing purpose and every purpose resting on legitimate interests or a public
    task."""

    purposes: list[str]


@dataclass(frozen=True)
class ChoicePaths:
    """Where the caller's input holds the choices, so an error names the API's path:
    ``input.choices.2.noticeVersion`` for a list, ``input.noticeVersion`` for a mutation that
    takes one choice (``single``)."""

    choices: str = "input.choices"
    single: bool = False

    def of(self, position: int, name: str) -> str:
        """The path of the field ``name`` (camelCase) of the choice at ``position``."""
        return f"{self.choices}.{name}" if self.single else f"{self.choices}.{position}.{name}"


@dataclass(frozen=True)
class ConsentRecording:
    """Decisions of one customer for the ledger, as captured: the ``choices`` given, or with
    ``opt_out`` the decisions that opt out of the purposes it concerns (worked out under the
    ledger lock: withdrawn where granted before, denied otherwise). ``operation`` names the
    call in the audit trail and scopes its idempotency keys; ``paths`` says where the choices
    are in the caller's input."""

    customer_id: uuid.UUID
    choices: list[Choice]
    capture: Capture
    operation: str = "recordConsent"
    opt_out: SaleOptOut | Objection | None = None
    paths: ChoicePaths = ChoicePaths()


async def record(
    actor: Principal,
    vault: Vault,
    recording: ConsentRecording,
    idempotency_key: str | None = None,
) -> tuple[list[uuid.UUID], bool]:
    """Append decisions (all or none) to the ledger; returns the entry ids and whether this
    replayed an earlier call with the same idempotency key."""
    customer_id, choices, capture = recording.customer_id, recording.choices, recording.capture
    operation, opt_out, paths = recording.operation, recording.opt_out, recording.paths
    issues = _check_capture(capture)
    if not choices and opt_out is None:
        issues.append(FieldIssue(paths.choices, ErrorCode.REQUIRED, "No decision given."))
    codes = [c.purpose_code for c in choices]
    for position, code in enumerate(codes):
        if code in codes[:position]:
            issues.append(
                FieldIssue(
                    paths.of(position, "purposeCode"),
                    ErrorCode.CONFLICT,
                    "A purpose is named twice.",
                )
            )
    if issues:
        raise ValidationFailed.from_issues(issues)

    asked = customer_id

    async def run() -> list[uuid.UUID]:
        # The row before the ledger (a merge locks them in that order); a merged id's
        # decisions go to its survivor.
        customer_id = await customers.lock_live(asked)
        stripe = stripe_of_customer(customer_id)
        previous = (await LEDGER.lock([stripe]))[stripe]
        now = clock.now()  # read under the locks: the customer's entries get increasing times
        decided_at = min(capture.decided_at or now, now)
        if isinstance(opt_out, SaleOptOut):
            decisions = await _opt_out_choices(customer_id, _sold_or_targeted)
        elif isinstance(opt_out, Objection):
            decisions = await _opt_out_choices(customer_id, _objectable(opt_out.purposes))
        else:
            decisions = choices
        if not decisions:
            return []
        purposes = await _purposes_of(decisions, paths)
        latest = await current_entries([customer_id], [p.id for p in purposes.values()])
        notices = await notices_of([p.id for p in purposes.values()])
        granted = [purposes[c.purpose_code].id for c in decisions if c.decision is Decision.GRANTED]
        if granted and not await customers.processable(customer_id):
            raise ProcessingRestricted(
                "Processing of this customer is restricted (GDPR Art. 18): no consent can be "
                "granted until the restriction is lifted; withdrawals are still recorded.",
                field="input.customerId",
            )
        if not personal_action(capture) and await objections_in_force(customer_id, granted):
            raise ObjectionInForce(
                "The person objected to this purpose or opted out of it; only their own action "
                "(method FORM, with the evidence of it) can grant it again.",
                field="input.method",
            )
        for position, choice in enumerate(decisions):
            purpose = purposes[choice.purpose_code]
            _check_choice(purpose, choice, paths.of(position, ""), decided_at, notices[purpose.id])
            before = latest.get((customer_id, purpose.id))
            if before is not None and decided_at < before.decided_at:
                raise Conflict(
                    "A later decision is already recorded for this purpose.",
                    field="input.decidedAt",
                )
        await vault.ready()
        key = await vault.customer_key(customer_id)
        evidence = None
        if capture.user_agent is not None or capture.ip_address is not None:
            evidence = vault.seal(
                key,
                customer_id,
                sealed_for.CONSENT_EVIDENCE,
                {
                    "user_agent": capture.user_agent,
                    "ip_digest": (
                        vault.blind_index("ip", capture.ip_address) if capture.ip_address else None
                    ),
                },
            )
        entries = []
        for choice in decisions:
            entry = ConsentEntry(
                id=uuid.uuid4(),
                customer_id=customer_id,
                purpose_id=purposes[choice.purpose_code].id,
                decision=choice.decision,
                notice_version=choice.notice_version,
                method=capture.method,
                channel=capture.channel,
                decided_at=decided_at,
                recorded_at=now,
                evidence_sealed=evidence,
                actor_kind=actor.kind.value,
                actor_id=actor.id,
                stripe=stripe,
                prev_hash=previous,
            )
            sign(entry)
            previous = entry.hash
            entries.append(entry)
        await ConsentEntry.bulk_create(entries)
        await audit.record(
            actor,
            f"consent.{operation}",
            target_type="customer",
            target_id=customer_id,
            fields=["consent_evidence"] if evidence else [],
        )
        return [e.id for e in entries]

    request = {
        "customer": str(customer_id),
        "gpc": isinstance(opt_out, SaleOptOut),
        "object_to": opt_out.purposes if isinstance(opt_out, Objection) else None,
        "choices": [[c.purpose_code, c.decision.value, c.notice_version] for c in choices],
        "capture": [
            capture.method.value,
            capture.channel,
            capture.decided_at.isoformat() if capture.decided_at else None,
            capture.user_agent,
            capture.ip_address,
        ],
    }
    outcome = await idempotency.run_once(
        vault,
        idempotency.scope_for(operation, actor),
        idempotency_key,
        idempotency.fingerprint(request),
        run,
        idempotency.Codec(_entries_json, _entries_of),
    )
    return outcome.result, outcome.replayed


def _entries_json(ids: list[uuid.UUID]) -> dict[str, Any]:
    """Recorded entry ids, as remembered for idempotent replays."""
    return {"entries": [str(i) for i in ids]}


def _entries_of(remembered: dict[str, Any]) -> list[uuid.UUID]:
    return [uuid.UUID(i) for i in remembered["entries"]]


async def _purposes_of(choices: list[Choice], paths: ChoicePaths) -> dict[str, Purpose]:
    """The purposes the choices name; :class:`NotFound` on the first unknown code."""
    found = {p.code: p for p in await Purpose.filter(code__in=[c.purpose_code for c in choices])}
    for position, choice in enumerate(choices):
        if choice.purpose_code not in found:
            raise NotFound("No purpose has this code.", field=paths.of(position, "purposeCode"))
    return found


def _check_choice(
    purpose: Purpose,
    choice: Choice,
    at: str,
    decided_at: datetime,
    notices: list[PurposeNotice],
) -> None:
    """``at``: the path of the choice, ending with a dot."""
    field = f"{at}noticeVersion"
    if choice.notice_version is not None and not (
        1 <= choice.notice_version <= purpose.current_version
    ):
        raise ValidationFailed("Unknown notice version.", field=field)
    if choice.decision is Decision.GRANTED:
        if purpose.mechanism is Mechanism.NOTICE_ONLY:
            raise PolicyViolation(
                "This purpose rests on another lawful basis; there is no consent to give.",
                field=f"{at}purposeCode",
            )
        # The version that was current when the decision was made (imports of old grants).
        shown = [n.version for n in notices if n.created_at <= decided_at]
        expected = max(shown) if shown else 1
        if choice.notice_version != expected:
            raise StaleNotice(
                "Consent must be given to the notice current at the time; show it again.",
                field=field,
            )


def _sold_or_targeted(purpose: Purpose) -> bool:
    return purpose.sale_or_sharing or purpose.data_use.startswith("marketing.advertising")


def _objectable(codes: list[str]) -> Callable[[Purpose], bool]:
    if codes:
        return lambda purpose: purpose.code in codes
    return lambda purpose: (
        purpose.data_use.startswith("marketing")
        or purpose.sale_or_sharing
        or purpose.lawful_basis in OBJECTABLE
    )


async def objections_in_force(
    customer_id: uuid.UUID, purpose_ids: list[uuid.UUID]
) -> set[uuid.UUID]:
    """Purposes the customer (or a profile merged into it) objected to (a request or GPC
    opt-out) with no grant by their own action since."""
    if not purpose_ids:
        return set()
    rows = await get_connection("default").execute_query_dict(
        'SELECT "purpose_id", '
        'max("sequence") FILTER (WHERE "method" = ANY($3::text[]) AND "decision" <> $5) AS o, '
        'max("sequence") FILTER (WHERE "method" = ANY($4::text[]) AND "decision" = $5) AS g '
        'FROM "consent_entries" WHERE "customer_id" = ANY($1::uuid[]) '
        'AND "purpose_id" = ANY($2::uuid[]) GROUP BY "purpose_id"',
        [
            [customer_id, *await customers.absorbed(customer_id)],
            list(set(purpose_ids)),
            [m.value for m in OBJECTING_METHODS],
            [m.value for m in PERSONAL_METHODS],
            Decision.GRANTED.value,
        ],
    )
    return {
        row["purpose_id"]
        for row in rows
        if row["o"] is not None and (row["g"] is None or row["g"] < row["o"])
    }


async def _opt_out_choices(
    customer_id: uuid.UUID, concerned: Callable[[Purpose], bool]
) -> list[Choice]:
    """Opt out of the concerned purposes not already opted out of: withdrawn where granted
    before, denied otherwise."""
    targeted = [p for p in await all_purposes() if concerned(p)]
    latest = await current_entries([customer_id], [p.id for p in targeted])
    choices = []
    for purpose in targeted:
        before = latest.get((customer_id, purpose.id))
        if before is not None and before.decision is not Decision.GRANTED:
            continue  # already opted out: nothing to add
        decision = Decision.WITHDRAWN if before is not None else Decision.DENIED
        choices.append(Choice(purpose.code, decision))
    return choices


async def record_gpc(
    actor: Principal,
    vault: Vault,
    customer_id: uuid.UUID,
    capture: Capture,
    idempotency_key: str | None = None,
) -> tuple[list[uuid.UUID], bool]:
    """Honour a Global Privacy Control signal: opt out of every sale/sharing and targeted
    advertising purpose (withdrawn where granted before, denied otherwise)."""
    signal = Capture(
        Method.GPC, capture.channel, capture.decided_at, capture.user_agent, capture.ip_address
    )
    recording = ConsentRecording(
        customer_id, [], signal, "recordGlobalPrivacyControl", opt_out=SaleOptOut()
    )
    return await record(actor, vault, recording, idempotency_key)


# --------------------------------------------------------------------------- reading


async def current_entries(
    customer_ids: list[uuid.UUID], purpose_ids: list[uuid.UUID], at: datetime | None = None
) -> dict[tuple[uuid.UUID, uuid.UUID], ConsentEntry]:
    """The latest decision per (customer, purpose), optionally as of ``at`` (one query)."""
    if not customer_ids or not purpose_ids:
        return {}
    # Decisions are appended in time order (back-dating before a later decision is refused),
    # so the latest entry is the current one; ``at`` looks only at decisions made by then.
    rows = await get_connection("default").execute_query_dict(
        'SELECT DISTINCT ON ("customer_id", "purpose_id") * FROM "consent_entries" '
        'WHERE "customer_id" = ANY($1::uuid[]) AND "purpose_id" = ANY($2::uuid[]) '
        'AND ($3::timestamptz IS NULL OR "decided_at" <= $3) '
        'ORDER BY "customer_id", "purpose_id", "sequence" DESC',
        [list(set(customer_ids)), list(set(purpose_ids)), at],
    )
    found = {}
    for row in rows:
        entry = ConsentEntry._init_from_db(**row)
        found[(row["customer_id"], row["purpose_id"])] = entry
    return found


#: Bases under which a person may object (GDPR Art. 21) to a notice-only purpose.
OBJECTABLE = frozenset({LawfulBasis.LEGITIMATE_INTERESTS, LawfulBasis.PUBLIC_TASK})


class LatestDecision(Protocol):
    """What an answer needs of the latest decision (a ledger entry, or the same columns read
    by the customer 360 reader)."""

    @property
    def decision(self) -> Decision: ...
    @property
    def notice_version(self) -> int | None: ...
    @property
    def decided_at(self) -> datetime: ...


@dataclass(frozen=True)
class Decided:
    """The latest decision's columns, without the rest of its ledger entry."""

    decision: Decision
    notice_version: int | None
    decided_at: datetime


def permitted_by_decision(purpose: Purpose, latest: LatestDecision | None) -> bool:
    """Whether the purpose's own rules allow using the data, given the latest decision (or
    none); restriction is not considered here (see :class:`Answer`)."""
    if purpose.lawful_basis is LawfulBasis.CONSENT:
        # Consent is given, never assumed, whatever mechanism a purpose was once declared with.
        return latest is not None and latest.decision is Decision.GRANTED
    if purpose.mechanism is Mechanism.NOTICE_ONLY:
        # Another lawful basis applies; only an objection under Art. 21 stops it.
        objected = latest is not None and latest.decision is not Decision.GRANTED
        return not (objected and purpose.lawful_basis in OBJECTABLE)
    if latest is None:
        return purpose.mechanism is Mechanism.OPT_OUT
    return latest.decision is Decision.GRANTED


@dataclass(frozen=True)
class Answer:
    """Whether a purpose may use a customer's data, and why: the one answer every use of
    customer data gets (:func:`answers`)."""

    purpose: Purpose
    latest: LatestDecision | None
    processable: bool  # the customer exists and their processing is not restricted

    @property
    def permitted(self) -> bool:
        return self.processable and permitted_by_decision(self.purpose, self.latest)

    @property
    def restricted(self) -> bool:
        return not self.processable


def answers_from(
    customer_ids: Iterable[uuid.UUID],
    purposes: list[Purpose],
    latest: Mapping[tuple[uuid.UUID, uuid.UUID], LatestDecision],
    processable: Set[uuid.UUID],
) -> dict[uuid.UUID, list[Answer]]:
    """The answer per customer and purpose from what was read: the latest decision per
    (customer, purpose id) and which customers exist unrestricted. Pure: :func:`answers` and
    the customer 360 reader (which reads the same inputs in its one statement) both use it."""
    return {
        customer_id: [
            Answer(p, latest.get((customer_id, p.id)), customer_id in processable) for p in purposes
        ]
        for customer_id in customer_ids
    }


@primary_reads
async def answers(
    customer_ids: list[uuid.UUID],
    purposes: list[Purpose],
    at: datetime | None = None,
    *,
    processable: set[uuid.UUID] | None = None,
) -> dict[uuid.UUID, list[Answer]]:
    """May each purpose use each customer's data (now, or at ``at``)? The one check: it takes
    the latest decisions and the customers' restriction (GDPR Art. 18: stored, not processed)
    together, with two queries whatever the numbers (one when the caller has just read the
    customers and says which are ``processable`` now). Unknown and erased customers get no."""
    wanted = list(dict.fromkeys(customer_ids))
    if processable is None or at is not None:
        processable = await customers.processable_among(wanted, at)
    latest = await current_entries(wanted, [p.id for p in purposes], at)
    return answers_from(wanted, purposes, latest, processable)


def most_restrictive(answers: Iterable[bool]) -> bool:
    """Combining profiles: the data may be used only if every profile allows it."""
    return all(answers)


async def answer(customer_id: uuid.UUID, purpose_code: str, at: datetime | None = None) -> Answer:
    """:func:`answers` for one customer and one purpose; :class:`NotFound` for an unknown
    purpose."""
    found = await purpose(purpose_code)
    return (await answers([customer_id], [found], at))[customer_id][0]


@primary_reads
async def may_process(
    customer_id: uuid.UUID, purpose_code: str, at: datetime | None = None
) -> bool:
    """The one question every use of customer data asks: may this customer's data be processed
    for this purpose (now, or at ``at``)? Unknown purposes, unknown customers and customers
    whose processing is restricted (GDPR Art. 18) are refused."""
    try:
        return (await answer(customer_id, purpose_code, at)).permitted
    except NotFound:
        return False


async def history(customer_id: uuid.UUID, purpose_code: str | None = None) -> list[ConsentEntry]:
    """Every decision of a customer (for one purpose, or all), oldest first, with those of the
    profiles merged into it."""
    query = ConsentEntry.filter(
        customer_id__in=[customer_id, *await customers.absorbed(customer_id)]
    )
    if purpose_code is not None:
        purposes = await _purposes_by_code([purpose_code], "purposeCode")
        query = query.filter(purpose_id=purposes[purpose_code].id)
    return list(await query.order_by("sequence").prefetch_related("purpose"))


@dataclass(frozen=True)
class HistoryFilter:
    """Which of a customer's decisions to list: every criterion given must hold."""

    purpose_code: str | None = None
    decision: Decision | None = None
    method: Method | None = None


async def history_query(
    customer_id: uuid.UUID, criteria: HistoryFilter, field: str = "filter.purposeCode"
) -> QuerySet[ConsentEntry]:
    """The decisions of a customer (with those of the profiles merged into it) that meet
    ``criteria``, with their purposes, unordered (the caller pages them by sequence); an
    unknown purpose code is :class:`NotFound` on ``field``."""
    query = ConsentEntry.filter(
        customer_id__in=[customer_id, *await customers.absorbed(customer_id)]
    )
    if criteria.purpose_code is not None:
        found = await Purpose.get_or_none(code=criteria.purpose_code)
        if found is None:
            raise NotFound("No purpose has this code.", field=field)
        query = query.filter(purpose_id=found.id)
    if criteria.decision is not None:
        query = query.filter(decision=criteria.decision)
    if criteria.method is not None:
        query = query.filter(method=criteria.method)
    return query.select_related("purpose")


async def entries_by_ids(ids: list[uuid.UUID]) -> dict[uuid.UUID, ConsentEntry]:
    """Ledger entries by id, with their purposes (one query)."""
    rows = await ConsentEntry.filter(id__in=list(set(ids))).select_related("purpose")
    return {row.id: row for row in rows}


async def live_customer(customer_id: uuid.UUID) -> uuid.UUID:
    """The customer a decision about ``customer_id`` went to: its survivor when it was merged
    into another, else itself."""
    return (await customers.survivors([customer_id])).get(customer_id, customer_id)


@dataclass(frozen=True)
class PurposeFilter:
    """Which purposes to list: every criterion given must hold."""

    codes: list[str] | None = None
    mechanism: Mechanism | None = None
    lawful_basis: LawfulBasis | None = None
    sale_or_sharing: bool | None = None


def purposes_query(criteria: PurposeFilter) -> QuerySet[Purpose]:
    """The purposes meeting ``criteria``, unordered (the caller pages them by code)."""
    query = Purpose.all()
    if criteria.codes is not None:
        query = query.filter(code__in=criteria.codes)
    if criteria.mechanism is not None:
        query = query.filter(mechanism=criteria.mechanism)
    if criteria.lawful_basis is not None:
        query = query.filter(lawful_basis=criteria.lawful_basis)
    if criteria.sale_or_sharing is not None:
        query = query.filter(sale_or_sharing=criteria.sale_or_sharing)
    return query


async def purposes_by_ids(ids: list[uuid.UUID]) -> dict[uuid.UUID, Purpose]:
    """Purposes by id (one query)."""
    return {p.id: p for p in await Purpose.filter(id__in=list(set(ids)))}


async def opt_in_rates() -> list[tuple[Purpose, int, int]]:
    """Per purpose: customers whose latest decision grants it, and all customers."""
    total = await customers.count()
    rows = await get_connection("default").execute_query_dict(
        'SELECT "purpose_id", count(*) AS granted FROM (SELECT DISTINCT ON ("customer_id", '
        '"purpose_id") "customer_id", "purpose_id", "decision" FROM "consent_entries" '
        'ORDER BY "customer_id", "purpose_id", "sequence" DESC) AS latest '
        'WHERE "decision" = \'granted\' AND "customer_id" IN '
        '(SELECT "id" FROM "customers" WHERE "erased_at" IS NULL AND "restricted_at" IS NULL '
        'AND "merged_into_id" IS NULL) '
        'GROUP BY "purpose_id"'
    )
    granted = {row["purpose_id"]: int(row["granted"]) for row in rows}
    return [(p, granted.get(p.id, 0), total) for p in await all_purposes()]


@dataclass(frozen=True)
class LedgerReport:
    """Result of re-computing the consent ledger's hash chain."""

    ok: bool
    entries_checked: int
    head_hash: str
    first_broken_sequence: int | None = None
    first_broken_id: uuid.UUID | None = None
    problem: chain.ChainProblem | None = None


async def verify_ledger() -> LedgerReport:
    """Walk every stripe of the ledger from its first entry and report the first broken link
    (lowest sequence), if any; ``head_hash`` is the newest intact entry's."""
    found = await check_all(LEDGER, ConsentEntry, content_of)
    if found.broken is None:
        return LedgerReport(True, found.checked, found.head_hash)
    entry = found.broken.entry
    return LedgerReport(
        False, found.checked, found.head_hash, entry.sequence, entry.id, found.broken.problem
    )


RECEIPT_NAMESPACE = uuid.UUID("6f0a3f8e-3c1e-5b7a-9d2c-cd1e00000001")
#: fideslang categories that are special-category (sensitive) personal data.
SENSITIVE_PREFIXES = (
    "user.biometric",
    "user.health_and_medical",
    "user.genetic",
    "user.criminal_history",
    "user.demographic.racial_ethnic_origin",
    "user.demographic.religious_belief",
    "user.demographic.political_opinion",
    "user.demographic.sexual_orientation",
)


@dataclass(frozen=True)
class Controller:
    """Who is responsible for the processing (from settings)."""

    name: str
    email: str | None
    policy_url: str | None
    jurisdiction: str


async def receipt(customer_id: uuid.UUID, controller: Controller) -> dict[str, Any]:
    """The customer's current consents as a Kantara Consent Receipt (v1.1)."""
    if not await customers.exists(customer_id):
        raise NotFound("No customer has this id.", field="customerId")
    purposes = await all_purposes()
    latest = await current_entries([customer_id], [p.id for p in purposes])
    listed = []
    sensitive_categories: set[str] = set()
    newest: ConsentEntry | None = None
    for purpose in purposes:
        entry = latest.get((customer_id, purpose.id))
        if purpose.mechanism is Mechanism.NOTICE_ONLY or not permitted_by_decision(purpose, entry):
            continue  # notice-only purposes rest on another basis: they are not consent
        if entry is not None and (newest is None or entry.decided_at > newest.decided_at):
            newest = entry
        listed.append(
            {
                "purpose": purpose.name,
                "purposeCategory": [purpose.data_use],
                "consentType": "EXPLICIT" if entry is not None else "IMPLICIT",
                "piiCategory": list(purpose.data_categories),
                "primaryPurpose": False,
                "termination": "Until withdrawn by the data subject.",
                "thirdPartyDisclosure": purpose.sale_or_sharing,
                "thirdPartyName": (
                    "; ".join(purpose.recipients) or "Named in the notice"
                    if purpose.sale_or_sharing
                    else None
                ),
            }
        )
        sensitive_categories.update(
            c for c in purpose.data_categories if c.startswith(SENSITIVE_PREFIXES)
        )
    decided = newest.decided_at if newest is not None else clock.now()
    return {
        "version": "KI-CR-v1.1.0",
        "jurisdiction": controller.jurisdiction,
        "consentTimestamp": int(decided.timestamp()),
        "collectionMethod": newest.method.value if newest is not None else "default",
        # The same ledger state always gives the same id, so a receipt can be referred to.
        "consentReceiptID": str(
            uuid.uuid5(RECEIPT_NAMESPACE, f"{customer_id}:{newest.hash if newest else 'none'}")
        ),
        "publicKey": None,
        "language": "en",
        "piiPrincipalId": str(customer_id),
        "piiControllers": [
            {
                "piiController": controller.name,
                "contact": controller.email or controller.name,
                "email": controller.email,
                "onBehalf": False,
            }
        ],
        "policyUrl": controller.policy_url,
        "services": [{"serviceName": controller.name, "purposes": listed}],
        "sensitive": bool(sensitive_categories),
        "spiCat": sorted(sensitive_categories),
    }
