"""Access and portability: the copy of someone's data, stored encrypted, and the short-lived
link it is fetched with.

The copy is JSON, sealed under the request's key. The requester gets a link holding a token
``cdlm_dl_<token_id>_<secret>``; only the secret's argon2id hash is stored, the token expires
(``CDLM_EXPORT_DOWNLOAD_TTL``) and works a few times at most.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from tortoise.expressions import F
from tortoise.transactions import in_transaction

from cdlm import clock
from cdlm.audit import service as audit
from cdlm.auth.principal import ANONYMOUS, Principal
from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.consent import service as consent
from cdlm.customers import rights
from cdlm.dsr import outbox
from cdlm.dsr.models import AccessExport, DataSubjectRequest, DownloadToken, RequestType
from cdlm.dsr.notifier import Notifier
from cdlm.dsr.service import add_event, locked, notify_requester
from cdlm.dsr.workflow import Status
from cdlm.errors import InvalidStateTransition, NotFound, PolicyViolation
from cdlm.quality.fields import PROFILE_FIELDS
from cdlm.retention import service as retention
from cdlm.vault.service import MissingKey, Vault

FORMAT = "cdlm-subject-access/1"
PORTABLE_FORMAT = "cdlm-portability/1"
MAX_DOWNLOADS = 5
#: How long a copy stays (for new links) after its last link stopped working, at least.
EXPORT_KEPT = timedelta(days=30)
TOKEN = re.compile(r"cdlm_dl_([A-Za-z0-9]{16})_([A-Za-z0-9_-]{20,64})")
AUTOMATED_DECISIONS = (
    "No decision with legal or similarly significant effects is made by automated means. "
    "Data quality scores are computed to keep the data accurate."
)


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
                "permitted": permitted.get(p.id, False),
            }
            for p in purposes
        ],
        "categories_of_personal_data": sorted({kind.value for kind in PROFILE_FIELDS.values()}),
        "recipients": [],
        "retention": "Kept while the customer relationship lasts, then disposed of under the "
        "retention policies in force; data under a legal hold is kept until the hold ends.",
        "automated_decisions": AUTOMATED_DECISIONS,
    }


async def _consents(customer_id: uuid.UUID) -> list[dict[str, Any]]:
    return [
        {
            "purpose": entry.purpose.code,
            "decision": entry.decision.value,
            "notice_version": entry.notice_version,
            "method": entry.method.value,
            "channel": entry.channel,
            "decided_at": entry.decided_at.isoformat(),
        }
        for entry in await consent.history(customer_id)
    ]


async def _requests(customer_id: uuid.UUID) -> list[dict[str, Any]]:
    rows = await DataSubjectRequest.filter(customer_id=customer_id).order_by("received_at")
    return [
        {
            "id": str(r.id),
            "type": r.type.value,
            "status": r.status.value,
            "received_at": r.received_at.isoformat(),
            "completed_at": r.completed_at.isoformat() if r.completed_at else None,
        }
        for r in rows
    ]


async def document(
    vault: Vault, settings: Settings, request: DataSubjectRequest, *, portable: bool
) -> dict[str, Any]:
    """The answer to an access (or portability) request, as JSON-ready data."""
    customer_id = request.customer_id
    held = (
        await rights.copy_of(vault, customer_id, portable_only=portable)
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
    if held is not None and customer_id is not None:
        answer["consents"] = await _consents(customer_id)
        if not portable:
            answer["requests"] = await _requests(customer_id)
    if not portable:
        answer["processing"] = await _processing_information(
            customer_id if held is not None else None
        )
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


async def send_link(
    vault: Vault, auth: AuthSettings, settings: Settings, request: DataSubjectRequest
) -> dict[str, Any]:
    """Issue a download token for the request's latest export and queue the link to the
    requester (in the caller's transaction)."""
    export = await AccessExport.filter(request_id=request.id).order_by("-created_at").first()
    if export is None:
        raise LookupError("the request has no export")
    token_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    expires_at = clock.now() + timedelta(seconds=settings.export_download_ttl)
    await DownloadToken.filter(export_id=export.id, revoked_at__isnull=True).update(
        revoked_at=clock.now()
    )
    await DownloadToken.create(
        token_id=token_id,
        export_id=export.id,
        secret_hash=await auth.hasher.hash_async(secret),
        created_at=clock.now(),
        expires_at=expires_at,
    )
    url = f"{settings.public_url}/exports/cdlm_dl_{token_id}_{secret}"
    sent = await notify_requester(
        vault, request, "export_ready", url=url, expires_at=expires_at.isoformat()
    )
    return {"token": token_id, "expires_at": expires_at.isoformat(), "sent": sent}


@dataclass(frozen=True)
class Download:
    """An export as the requester fetches it."""

    request_id: uuid.UUID
    content: bytes


async def download(vault: Vault, auth: AuthSettings, token: str) -> Download | None:
    """The export a token opens, or None (unknown, wrong, expired or used up: never which)."""
    match = TOKEN.fullmatch(token)
    if match is None:
        return None
    token_id, secret = match.groups()
    async with in_transaction():
        row = (
            await DownloadToken.filter(token_id=token_id)
            .select_for_update()
            .prefetch_related("export")
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
        export = row.export
        request_id: uuid.UUID = export.request_id  # type: ignore[attr-defined]
        try:
            key = await vault.customer_key(request_id)
        except MissingKey:
            return None
        content = vault.open_bytes(key, request_id, f"export:{export.id}", export.content_sealed)
        await DownloadToken.filter(token_id=token_id).update(downloads=F("downloads") + 1)
        request = await DataSubjectRequest.get(id=request_id)
        await add_event(request, "export_downloaded", ANONYMOUS)
        await audit.record(
            ANONYMOUS, "dsr.download", target_type="data_subject_request", target_id=request_id
        )
    return Download(request_id, content)


async def delete_unreachable_exports() -> int:
    """Delete exports older than ``EXPORT_KEPT`` that no link can fetch any more (every token
    expired, revoked or used up); until then staff can send a new link. A legal hold on
    ``dsr.exports`` or on the customer keeps them."""
    now = clock.now()
    holds = await retention.active_holds()
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
        await add_event(request, "link_resent", actor)
        await audit.record(
            actor, "dsr.resend_link", target_type="data_subject_request", target_id=request.id
        )
    await outbox.deliver_pending(vault, notifier, [request.id])
    return request
