"""Access and portability: the copy of someone's data, stored encrypted, and the short-lived
link it is fetched with.

The copy is JSON, sealed under the request's key. The requester gets a link holding a token
``cdlm_dl_<token_id>_<secret>``; only the secret's argon2id hash is stored, the token expires
(``CDLM_EXPORT_DOWNLOAD_TTL``) and works a few times at most.

Every table holding a customer id or a request id is either in the access export
(:data:`EXPORTED_IN`, with where) or withheld with the reason the requester is told
(:data:`WITHHELD`, also the export's ``withheld`` section); ``tests/dsr/test_access_coverage.py``
walks the database and fails on a table that is neither.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.consent import service as consent
from cdlm.core import clock
from cdlm.core.errors import InvalidStateTransition, NotFound, PolicyViolation
from cdlm.core.principal import ANONYMOUS, Principal
from cdlm.customer360 import export
from cdlm.customers import service as customers
from cdlm.dsr import outbox
from cdlm.dsr import service as requests_service
from cdlm.dsr.models import (
    AccessExport,
    DataSubjectRequest,
    DownloadToken,
    Notification,
    RequestType,
    TimelineKind,
)
from cdlm.dsr.notifier import Notifier
from cdlm.dsr.service import NewTimelineEntry, add_event, locked, notify_requester
from cdlm.dsr.workflow import Status
from cdlm.holds import service as legal_holds
from cdlm.matching import history
from cdlm.matching.models import Merge
from cdlm.quality.fields import PROFILE_FIELDS
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import MissingKey, Vault

if TYPE_CHECKING:
    from cdlm.audit.models import AuditEntry
    from cdlm.consent.models import ConsentEntry, Purpose

FORMAT = "cdlm-subject-access/1"
PORTABLE_FORMAT = "cdlm-portability/1"
MAX_DOWNLOADS = 5
#: How long a copy stays (for new links) after its last link stopped working, at least.
EXPORT_KEPT = timedelta(days=30)
TOKEN = re.compile(r"cdlm_dl_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{20,64})")
AUTOMATED_DECISIONS = (
    "No decision with legal or similarly significant effects is made by automated means. "
    "Data quality scores are computed to keep the data accurate. For analysis, coarse "
    "attributes (such as your country or age band) are derived from your data and scores are "
    "computed from your purchases (how recently, how often and how much you buy, how likely you "
    "are to buy again): they are in this copy under data.analysis. The text of your reviews, "
    "survey answers and messages is scored for how positive it reads (English wording only): "
    "each score is with its event under data.events, their average under data.analysis."
)
#: What a purpose that sells or shares data shows when no recipient was recorded for it (it was
#: made before recipients were kept).
NOT_RECORDED = "not recorded"

#: Tables holding a customer id or a request id whose rows are in the access export, and where.
EXPORTED_IN: dict[str, str] = {
    "customers": "data",
    "identities": "data.identities",
    "events": "data.events",
    "source_records": "data.source_records",
    "invalid_values": "data.refused_values",
    "consent_entries": "consents",
    "dsr_requests": "requests",
    "dsr_request_events": "requests[].timeline",
    "notification_outbox": "requests[].notifications",
    "audit_entries": "audit_trail",
    "audit_pending": "audit_trail",  # read records not chained yet (audit.about_subject)
    "merges": "merges",
    "customer_attributes": "data.analysis",
}
EXPORTED: frozenset[str] = frozenset(EXPORTED_IN)

#: Tables holding a customer id or a request id (or a keyed digest of a person's identifier)
#: whose rows are deliberately left out of the access export, with the reason the requester is
#: given in the export's ``withheld`` section.
WITHHELD: dict[str, str] = {
    "identity_conflicts": (
        "Records that a profile of another person shares one of your email addresses or phone "
        "numbers and was kept apart from yours. They name that other person's profile, and "
        "telling you of them would tell you about that person, so they are withheld to protect "
        "them (GDPR Art. 15(4)). Nothing of theirs is in your profile."
    ),
    "legal_holds": (
        "Instructions to keep data for a legal claim, an investigation or a legal duty. Telling "
        "of a hold can prejudice the claim or investigation it serves, so holds are withheld "
        "where the law allows (restrictions under GDPR Art. 23(1), such as those for legal "
        "claims); ask the controller, who tells you where no such restriction applies. A hold "
        "that stops one of your requests shows in that request's status and timeline. Data "
        "under a hold is kept until the hold ends (see processing.retention)."
    ),
    "dsr_verification_codes": (
        "One-way (argon2id) hashes of the one-time codes sent to confirm your requests. They are "
        "security secrets and say nothing about you; each code sent is listed in the "
        "notifications of its request."
    ),
    "dsr_download_tokens": (
        "One-way (argon2id) hashes of the secrets in your download links, with their expiry and "
        "use count. They are security secrets; each download is in the request's timeline."
    ),
    "dsr_exports": (
        "The copies made for your access requests, this one included, each sealed under its "
        "request's key. A copy holds what this document holds as it was then; copies are not "
        "copied into one another."
    ),
    "match_candidates": (
        "Pairs of profiles that matching scored as possibly one person, waiting for or decided "
        "by a steward. The other profile of a pair may be another person's, and telling you of "
        "it would tell you about them, so candidates are withheld to protect them (GDPR Art. "
        "15(4)). A pair merged into your profile shows in merges."
    ),
    "erasure_register_pending": (
        "A note that a profile was erased, for the few moments until it is written to the "
        "erasure register outside the database. It exists only after your data is erased, and "
        "holds ids and keyed digests of your identifiers, no values."
    ),
    "absorbed_keys": (
        "The encryption keys of profiles of yours merged into this one, kept only sealed under "
        "this profile's key. They are security secrets, not information about you; erasure "
        "destroys them with this profile's key."
    ),
    "customer_keys": (
        "The encryption keys (wrapped by a master key) your data and your requests are sealed "
        "under. They are security secrets, not information about you; erasure destroys them."
    ),
    "suppressed_identifiers": (
        "Keyed digests of the email addresses, phone numbers and ids of a person whose data was "
        "erased at their request, kept only so that they are not taken in again. No value can "
        "be read back from a digest, and they belong to no profile."
    ),
    "rate_limit_counters": (
        "Counts of attempts per keyed digest of a network address or an identifier, within an "
        "hour or a day, kept to stop abuse of the request and download forms and then deleted. "
        "No value can be read back from them."
    ),
    "idempotency_records": (
        "Results of API calls remembered for a while (ids and outcomes, no personal values; the "
        "caller's key only as a keyed digest) so that a call sent twice acts once. What those "
        "calls did to your data is in this copy."
    ),
}

#: Explanations of the parts of the export, shown to the requester with them.
ABOUT: dict[str, str] = {
    "data": "Everything held in your profile: what each source sent, your identifiers, events "
    "and values that were refused, decrypted for you.",
    "consents": "Each decision you made about a purpose, with its evidence: the user agent "
    "and a keyed digest of the IP address it came from (HMAC-SHA256 under a key of this "
    "installation). The IP address itself is not kept and cannot be read back from the digest.",
    "requests": "Your data subject requests: what you asked, their timelines (with what staff "
    "wrote about them, while the request's key exists) and the messages sent to you "
    "(when and how; their text is deleted once sent).",
    "audit_trail": "Every recorded read or change of your profile and your requests: when, "
    "what, which fields and who by kind and role. Staff members are not named: they act for "
    "the controller, and the controller answers for what they do.",
    "processing": "Why your data is used (each purpose, whether it may use your data now, and "
    "who receives it), the categories of data, recipients, retention and automated decisions.",
    "withheld": "What is held about you but not in this copy, and why.",
}


async def _processing_information(customer_id: uuid.UUID | None) -> dict[str, Any]:
    """What GDPR Art. 15(1) asks besides the data: purposes, categories, recipients,
    retention, sources and automated decisions."""
    purposes = await consent.all_purposes()
    permitted = (
        {
            a.purpose.id: a.permitted
            for a in (await consent.answers([customer_id], purposes))[customer_id]
        }
        if customer_id is not None
        else {}
    )
    return {
        "purposes": [
            {
                "code": p.code,
                "name": p.name,
                "description": p.description,
                "lawful_basis": p.lawful_basis.value,
                "data_use": p.data_use,
                "data_categories": list(p.data_categories),
                "sale_or_sharing": p.sale_or_sharing,
                "recipients": _recipients_of(p),
                "permitted": permitted.get(p.id, False),
            }
            for p in purposes
        ],
        "categories_of_personal_data": sorted({kind.value for kind in PROFILE_FIELDS.values()}),
        "recipients": [
            {
                "purpose": p.code,
                "sale_or_sharing": p.sale_or_sharing,
                "recipients": _recipients_of(p),
                "permitted": permitted.get(p.id, False),
            }
            for p in purposes
            if p.sale_or_sharing or p.recipients
        ],
        "retention": "Kept while the customer relationship lasts, then disposed of under the "
        "retention policies in force; data under a legal hold is kept until the hold ends.",
        "automated_decisions": AUTOMATED_DECISIONS,
    }


def _recipients_of(purpose: Purpose) -> list[str] | str:
    """Who a purpose discloses data to: the recorded names or categories, "not recorded" for a
    purpose that sells or shares data but predates recipients, or none."""
    if purpose.recipients:
        return list(purpose.recipients)
    return NOT_RECORDED if purpose.sale_or_sharing else []


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _evidence(
    vault: Vault, key: bytes | None, customer_id: uuid.UUID, entry: ConsentEntry
) -> dict[str, Any] | None:
    """A decision's sealed evidence, opened: the user agent and the keyed digest of the IP
    address (the address itself is never kept)."""
    if entry.evidence_sealed is None or key is None:
        return None
    found = vault.open(key, customer_id, sealed_for.CONSENT_EVIDENCE, bytes(entry.evidence_sealed))
    return {
        "user_agent": found.get("user_agent"),
        "ip_address_keyed_digest": found.get("ip_digest"),
    }


async def _consents(
    vault: Vault, customer_id: uuid.UUID, *, evidence: bool
) -> list[dict[str, Any]]:
    entries = await consent.history(customer_id)
    # Entries of profiles merged into this one are sealed for those profiles; their keys are
    # kept under this one's (:meth:`Vault.absorb`).
    keys = await vault.customer_keys({e.customer_id for e in entries}) if evidence else {}
    decisions = []
    for entry in entries:
        decision: dict[str, Any] = {
            "purpose": entry.purpose.code,
            "decision": entry.decision.value,
            "notice_version": entry.notice_version,
            "method": entry.method.value,
            "channel": entry.channel,
            "decided_at": entry.decided_at.isoformat(),
        }
        if evidence:
            decision["recorded_at"] = entry.recorded_at.isoformat()
            decision["evidence"] = _evidence(
                vault, keys.get(entry.customer_id), entry.customer_id, entry
            )
        decisions.append(decision)
    return decisions


async def _request_rows(
    customer_id: uuid.UUID | None, request: DataSubjectRequest
) -> list[DataSubjectRequest]:
    """The person's requests: every one matched to their profile, or only this one when no
    profile is held."""
    if customer_id is None:
        return [request]
    rows = await DataSubjectRequest.filter(customer_id=customer_id).order_by("received_at", "id")
    return rows if any(r.id == request.id for r in rows) else [*rows, request]


async def _notifications(request_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[dict[str, Any]]]:
    """The messages sent (or waiting) about each request: metadata only, as the text is
    emptied once sent."""
    found: dict[uuid.UUID, list[dict[str, Any]]] = {r: [] for r in request_ids}
    rows = await Notification.filter(request_id__in=request_ids).order_by("created_at", "id")
    for row in rows:
        found[row.request_id].append(
            {
                "template": row.template,
                "channel": row.channel,
                "created_at": row.created_at.isoformat(),
                "sent_at": _iso(row.sent_at),
                "attempts": row.attempts,
            }
        )
    return found


async def _requests(vault: Vault, rows: list[DataSubjectRequest]) -> list[dict[str, Any]]:
    """Each request with what was asked, its reasons, its timeline and its messages. What the
    requester gave and what staff wrote is sealed under the request's key: it is opened while
    the key exists, and None once it is destroyed."""
    ids = [r.id for r in rows]
    timelines = await requests_service.timelines(vault, ids)
    reasons = await requests_service.reasons(vault, rows)
    messages = await _notifications(ids)
    keys = await vault.customer_keys(ids)
    answered = []
    for r in rows:
        key = keys.get(r.id)
        subject = (
            requests_service.subject_of(vault.open(key, r.id, "subject", bytes(r.subject_sealed)))
            if key is not None and r.subject_sealed is not None
            else None
        )
        asked = (
            vault.open(key, r.id, "details", bytes(r.details_sealed))
            if key is not None and r.details_sealed is not None
            else None
        )
        answered.append(
            {
                "id": str(r.id),
                "type": r.type.value,
                "status": r.status.value,
                "jurisdiction": r.jurisdiction.value,
                "filed_via": r.filed_via.value,
                "received_at": r.received_at.isoformat(),
                "verified_at": _iso(r.verified_at),
                "verification_method": (
                    r.verification_method.value if r.verification_method else None
                ),
                "due_at": r.due_at.isoformat(),
                "extended": r.extended,
                "completed_at": _iso(r.completed_at),
                "duplicate_of": str(r.duplicate_of_id) if r.duplicate_of_id else None,
                "identified_by": (
                    {"kind": subject.kind.value, "value": subject.text} if subject else None
                ),
                "asked": asked,
                "reason": reasons[r.id].reason,
                "extension_reason": reasons[r.id].extension_reason,
                "timeline": [
                    {
                        "at": e.at.isoformat(),
                        "kind": e.kind,
                        "from_status": e.from_status.value if e.from_status else None,
                        "to_status": e.to_status.value if e.to_status else None,
                        # Who by kind only, as in the audit trail (see _audit_entry).
                        "actor_kind": e.actor_kind,
                        "note": _timeline_note(e),
                    }
                    for e in timelines[r.id]
                ],
                "notifications": messages[r.id],
            }
        )
    return answered


def _timeline_note(entry: requests_service.TimelineEntry) -> str | None:
    """A timeline note as the requester reads it: an assignment's note names the staff member
    by id, which the export does not (see :func:`_audit_entry`)."""
    if entry.kind == "assigned" and entry.note is not None and entry.note != "unassigned":
        return "to a staff member"
    return entry.note


def _audit_entry(entry: AuditEntry, own: set[uuid.UUID]) -> dict[str, Any]:
    # Staff are given by kind and role, never by id (nor name). The CJEU held (C-579/21,
    # Pankki S, 22 June 2023) that the person may have the log of the consultations of their
    # data (when, what, why), but not the identity of the employees who made them under the
    # controller's authority, unless they need it to exercise their rights, and then only
    # weighed against the employees' own rights. A staff id identifies its holder to anyone
    # with the staff list, and the export cannot weigh a case; a requester who needs more asks
    # the controller, who answers for its staff (GDPR Art. 29) and can look the entry up.
    return {
        "at": entry.occurred_at.isoformat(),
        "action": entry.action,
        "fields": list(entry.fields_touched),
        "actor_kind": entry.actor_kind,
        "actor_role": entry.actor_role,
        "target_type": entry.target_type,
        # A read record covers every customer a request read: only this person's id is shown.
        "target_id": entry.target_id or _own_subject(entry, own),
    }


def _own_subject(entry: AuditEntry, own: set[uuid.UUID]) -> str | None:
    mine = sorted(str(s) for s in entry.subject_ids or () if s in own)
    return mine[0] if mine else None


async def _audit_trail(
    customer_ids: list[uuid.UUID], request_ids: list[uuid.UUID]
) -> list[dict[str, Any]]:
    """Who read or changed the person's data: audit entries about their profiles (this one and
    those merged into it) or requests."""
    own = {*customer_ids, *request_ids}
    return [_audit_entry(e, own) for e in await audit.about_subject(customer_ids, request_ids)]


def _when(merge: Merge) -> tuple[datetime, str]:
    return merge.merged_at, str(merge.id)


def withheld() -> list[dict[str, str]]:
    """The export's ``withheld`` section: each table left out, and why."""
    return [{"table": table, "reason": reason} for table, reason in sorted(WITHHELD.items())]


async def document(
    vault: Vault, settings: Settings, request: DataSubjectRequest, *, portable: bool
) -> dict[str, Any]:
    """The answer to an access (or portability) request, as JSON-ready data."""
    customer_id = request.customer_id
    held = (
        await export.copy_of(vault, customer_id, portable_only=portable)
        if customer_id is not None
        else None
    )
    answer: dict[str, Any] = {
        "format": PORTABLE_FORMAT if portable else FORMAT,
        "generated_at": clock.now().isoformat(),
        "request": {
            "id": str(request.id),
            "type": request.type.value,
            "received_at": request.received_at.isoformat(),
            "jurisdiction": request.jurisdiction.value,
        },
        "controller": {
            "name": settings.controller_name,
            "contact": settings.controller_email,
            "policy_url": settings.policy_url,
        },
        "data_found": held is not None,
        "data": held,
    }
    found = customer_id if held is not None else None
    if found is not None:
        answer["consents"] = await _consents(vault, found, evidence=not portable)
    if not portable:
        profiles = [found, *await customers.absorbed(found)] if found is not None else []
        merges = await history.of_customers(profiles)
        answer["merges"] = [
            history.merge_json(m)
            for m in sorted({m.id: m for ms in merges.values() for m in ms}.values(), key=_when)
        ]
        rows = await _request_rows(found, request)
        answer["requests"] = await _requests(vault, rows)
        answer["audit_trail"] = await _audit_trail(profiles, [r.id for r in rows])
        answer["processing"] = await _processing_information(found)
        answer["withheld"] = withheld()
        answer["about"] = dict(ABOUT)
    return answer


async def collect(
    actor: Principal,
    vault: Vault,
    settings: Settings,
    request: DataSubjectRequest,
    *,
    portable: bool,
) -> dict[str, Any]:
    """Build the answer and store it sealed (in the caller's transaction); the read of the
    customer's data is audited."""
    answer = await document(vault, settings, request, portable=portable)
    if answer["data_found"]:
        await audit.record(
            actor,
            "dsr.export",
            target_type="customer",
            target_id=request.customer_id,
            fields=["everything"],
        )
    encoded = json.dumps(answer, ensure_ascii=False, indent=2, sort_keys=True).encode()
    key = await vault.customer_key(request.id)
    export_id = uuid.uuid4()
    await AccessExport.create(
        id=export_id,
        request_id=request.id,
        created_at=clock.now(),
        content_sealed=vault.seal_json(key, request.id, f"export:{export_id}", encoded),
        size_bytes=len(encoded),
        sha256=hashlib.sha256(encoded).hexdigest(),
    )
    return {"export": str(export_id), "bytes": len(encoded), "data_found": answer["data_found"]}


@dataclass(frozen=True)
class Link:
    """A download link as its caller is shown it (once: only the secret's hash is kept)."""

    token_id: str
    url: str
    expires_at: datetime


async def issue_link(
    auth: AuthSettings,
    settings: Settings,
    *,
    export_id: uuid.UUID | None = None,
    segment_export_id: uuid.UUID | None = None,
) -> Link:
    """A new download token for one file, an access export or a segment export (in the
    caller's transaction); the file's earlier links stop working. Every file cdlm hands out is
    fetched this way: ``GET /exports/<token>``, expiring after ``CDLM_EXPORT_DOWNLOAD_TTL``
    and working :data:`MAX_DOWNLOADS` times at most."""
    if (export_id is None) == (segment_export_id is None):
        raise ValueError("a link opens exactly one file")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    now = clock.now()
    expires_at = now + timedelta(seconds=settings.export_download_ttl)
    earlier = (
        DownloadToken.filter(export_id=export_id)
        if export_id is not None
        else DownloadToken.filter(segment_export_id=segment_export_id)
    )
    await earlier.filter(revoked_at__isnull=True).update(revoked_at=now)
    await DownloadToken.create(
        token_id=token_id,
        export_id=export_id,
        segment_export_id=segment_export_id,
        secret_hash=await auth.hasher.hash_async(secret),
        created_at=now,
        expires_at=expires_at,
    )
    return Link(token_id, f"{settings.public_url}/exports/cdlm_dl_{token_id}_{secret}", expires_at)


async def send_link(
    vault: Vault, auth: AuthSettings, settings: Settings, request: DataSubjectRequest
) -> dict[str, Any]:
    """Issue a download token for the request's latest export and queue the link to the
    requester (in the caller's transaction)."""
    export = await AccessExport.filter(request_id=request.id).order_by("-created_at").first()
    if export is None:
        raise LookupError("the request has no export")
    link = await issue_link(auth, settings, export_id=export.id)
    sent = await notify_requester(
        vault, request, "export_ready", url=link.url, expires_at=link.expires_at.isoformat()
    )
    return {"token": link.token_id, "expires_at": link.expires_at.isoformat(), "sent": sent}


#: What a segment export's file is sealed for (under the export's own key).
SEGMENT_EXPORT = "segment-export"
#: Media type and file name extension of each segment export format.
SEGMENT_FORMATS: dict[str, tuple[str, str]] = {
    "csv": ("text/csv; charset=utf-8", "csv"),
    "json_lines": ("application/jsonl", "jsonl"),
}


@dataclass(frozen=True)
class Download:
    """A file as its link fetches it: an access export (``request_id`` set, JSON) or a segment
    export (``segment_export_id`` set, CSV or JSON lines)."""

    request_id: uuid.UUID | None
    content: bytes
    segment_export_id: uuid.UUID | None = None
    media_type: str = "application/json"
    extension: str = "json"


async def download(vault: Vault, auth: AuthSettings, token: str) -> Download | None:
    """The file a token opens, or None (unknown, wrong, expired or used up: never which)."""
    match = TOKEN.fullmatch(token)
    if match is None:
        return None
    token_id, secret = match.groups()
    async with in_transaction():
        row = (
            await DownloadToken.filter(token_id=token_id)
            .select_for_update()
            .prefetch_related("export", "segment_export")
            .first()
        )
        now = clock.now()
        if row is None:
            await auth.hasher.verify_nothing_async(secret)
            return None
        if (
            not await auth.hasher.verify_async(row.secret_hash, secret)
            or row.revoked_at is not None
            or row.expires_at <= now
            or row.downloads >= MAX_DOWNLOADS
        ):
            return None
        if row.segment_export is not None:
            return await _segment_download(vault, row)
        export = row.export
        if export is None:
            return None
        request_id: uuid.UUID = export.request_id  # type: ignore[attr-defined]
        try:
            key = await vault.customer_key(request_id)
        except MissingKey:
            return None
        content = vault.open_bytes(key, request_id, f"export:{export.id}", export.content_sealed)
        await DownloadToken.filter(token_id=token_id).update(downloads=F("downloads") + 1)
        request = await DataSubjectRequest.get(id=request_id)
        await add_event(ANONYMOUS, request, NewTimelineEntry(TimelineKind.EXPORT_DOWNLOADED))
        await audit.record(
            ANONYMOUS, "dsr.download", target_type="data_subject_request", target_id=request_id
        )
    return Download(request_id, content)


async def _segment_download(vault: Vault, row: DownloadToken) -> Download | None:
    """A segment export's file (in the caller's transaction, the token locked), audited."""
    export = row.segment_export
    if export is None or export.content_sealed is None:
        return None
    try:
        key = await vault.customer_key(export.id)
    except MissingKey:
        return None
    content = vault.open_bytes(key, export.id, SEGMENT_EXPORT, bytes(export.content_sealed))
    await DownloadToken.filter(token_id=row.token_id).update(downloads=F("downloads") + 1)
    await audit.record(
        ANONYMOUS, "segment.export.download", target_type="segment_export", target_id=export.id
    )
    media_type, extension = SEGMENT_FORMATS[export.format]
    return Download(None, content, export.id, media_type, extension)


async def delete_unreachable_exports() -> int:
    """Delete exports older than ``EXPORT_KEPT`` that no link can fetch any more (every token
    expired, revoked or used up); until then staff can send a new link. A legal hold on
    ``dsr.exports`` or on the customer keeps them."""
    now = clock.now()
    holds = await legal_holds.active_holds()
    if any(h.category == "dsr.exports" for h in holds):
        return 0
    held_customers = [h.customer_id for h in holds if h.customer_id is not None]
    live = DownloadToken.filter(
        revoked_at__isnull=True, expires_at__gt=now, downloads__lt=MAX_DOWNLOADS
    ).values_list("export_id", flat=True)
    reachable = set(await live)
    candidates = AccessExport.filter(created_at__lt=now - EXPORT_KEPT).exclude(
        request__customer_id__in=held_customers
    )
    stale = [
        export_id
        for export_id in await candidates.values_list("id", flat=True)
        if export_id not in reachable
    ]
    if not stale:
        return 0
    return await AccessExport.filter(id__in=stale).delete()


async def resend_link(
    actor: Principal,
    vault: Vault,
    auth: AuthSettings,
    settings: Settings,
    notifier: Notifier,
    request_id: uuid.UUID,
) -> DataSubjectRequest:
    """Send the requester a new link to their copy (the previous links stop working)."""
    async with in_transaction():
        request = await locked(request_id)
        answered = request.type in (RequestType.ACCESS, RequestType.PORTABILITY)
        if not answered or request.status is not Status.COMPLETED:
            raise InvalidStateTransition(
                "Only a completed access or portability request has a copy to send.",
                field="input.id",
            )
        if not await AccessExport.exists(request_id=request.id):
            raise NotFound(
                "The copy has been deleted (retention); the person can ask again.",
                field="input.id",
            )
        sent = await send_link(vault, auth, settings, request)
        if not sent["sent"]:
            raise PolicyViolation(
                "The requester gave no email or phone number to send the link to.",
                field="input.id",
            )
        await add_event(actor, request, NewTimelineEntry(TimelineKind.LINK_RESENT))
        await audit.record(
            actor, "dsr.resend_link", target_type="data_subject_request", target_id=request.id
        )
    await outbox.deliver_pending(vault, notifier, [request.id])
    return request
