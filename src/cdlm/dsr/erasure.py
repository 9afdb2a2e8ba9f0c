"""Erasure (GDPR Art. 17, CCPA right to delete) by crypto-shredding and deletion.

The steps, each resumable (see :mod:`cdlm.dsr.execution`):

1. plan: count what is held, and find legal holds. A hold on the customer stops the erasure
   (the request waits on hold); a hold on a category keeps those rows, restricted.
2. retain: re-seal what a hold keeps under a key of its own, so it outlives the next step.
3. suppress: remember the person's identifiers as blind indexes, so the next import does not
   re-create them.
4. shred: destroy the customer's data key (every copy of their ciphertext, in backups and
   archives too, becomes unreadable), and the copies made for earlier access requests.
5. delete: delete their rows in every table, events included.

The certificate lists what was erased and what was kept, why, and until when. The requester's
own contact details are destroyed once the completion notice has gone out. When a hold that
kept rows ends, the tick erases them (:func:`erase_released`), destroys the key they were
re-sealed under once nothing is kept any more, and adds it to the certificate.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any

from cdlm.config import Settings
from cdlm.consent import service as consent
from cdlm.core import clock
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.principal import SYSTEM
from cdlm.customers import rights
from cdlm.customers import service as customers
from cdlm.dsr import outbox
from cdlm.dsr.models import AccessExport, DataSubjectRequest, Notification, TimelineKind
from cdlm.dsr.service import NewTimelineEntry, add_event, destroy_request_secrets
from cdlm.dsr.workflow import FINAL
from cdlm.erasures import register
from cdlm.holds import service as legal_holds
from cdlm.identity import service as identity
from cdlm.matching import forget as matching
from cdlm.vault.service import Vault

CONSENT_LEDGER_REASON = (
    "Proof of consent decisions (GDPR Art. 7(1)). The ledger is append-only and holds ids, "
    "purposes and times; its evidence was sealed under the destroyed key and is unreadable."
)
AUDIT_TRAIL_REASON = (
    "Accountability (GDPR Art. 5(2)): who did what and when, by id; it holds no personal values."
)


async def plan(request: DataSubjectRequest) -> dict[str, Any]:
    """What is held about the subject, what holds keep, and whether the customer is held."""
    customer_id = request.customer_id
    if customer_id is None:
        return {"found": False, "inventory": rights.Inventory(found=False).to_json()}
    holds = await legal_holds.holds_on(customer_id)
    on_customer = legal_holds.on_customer(holds, customer_id)
    if on_customer is not None:
        return {"held_by": str(on_customer.id)}
    held = await rights.inventory(customer_id)
    earlier_exports = await AccessExport.filter(
        request__customer_id=customer_id, request_id__not=request.id
    ).count()
    retained = []
    for hold in holds:
        category = hold.category or ""
        if category == "events":
            count = sum(held.events.values())
        elif category.startswith("events."):
            count = held.events.get(category.split(".", 1)[1], 0)
        elif category == "source_records":
            count = held.source_records
        elif category == "dsr.exports":
            count = earlier_exports
        else:
            continue  # other categories (e.g. customers.inactive) are not erased here
        if count:
            retained.append(
                {
                    "category": category,
                    "count": count,
                    "reason": hold.reason,
                    "hold_id": str(hold.id),
                    "until": hold.ends_at.isoformat() if hold.ends_at else None,
                }
            )
    return {
        "found": held.found,
        "inventory": held.to_json(),
        "retained": retained,
        "consent_entries": len(await consent.history(customer_id)) if held.found else 0,
    }


def keep_of(planned: dict[str, Any]) -> rights.Keep:
    """What the plan's holds keep."""
    return rights.Keep.of({r["category"] for r in planned.get("retained", [])})


async def retain(vault: Vault, request: DataSubjectRequest, keep: rights.Keep) -> int:
    """Re-seal what holds keep under their own key; the count of rows re-sealed."""
    if request.customer_id is None:
        return 0
    return await rights.keep_readable(vault, request.customer_id, keep)


async def suppress(request: DataSubjectRequest, planned: dict[str, Any]) -> int:
    """Suppress the person's identifiers (and the one they asked with), holding the same
    identifier locks as ingestion, so no import in flight can slip past."""
    if not planned.get("found") or request.customer_id is None:
        return 0
    entries = await _identifiers(request)
    await identity.lock(index for _, index in entries)
    return await identity.suppress(entries, request.id)


async def _identifiers(request: DataSubjectRequest) -> list[tuple[IdentifierKind, str]]:
    """(kind, blind index) of the person's identifiers and of the one they asked with."""
    assert request.customer_id is not None
    entries = await identity.blind_indexes_of(request.customer_id)
    entries.append((request.subject_kind, request.subject_index))
    return entries


async def customer_hold(customer_id: uuid.UUID | None) -> str | None:
    """The id of an active hold on the customer, if any."""
    if customer_id is None:
        return None
    on_customer = legal_holds.on_customer(await legal_holds.holds_on(customer_id), customer_id)
    return str(on_customer.id) if on_customer is not None else None


async def shred(
    vault: Vault, request: DataSubjectRequest, planned: dict[str, Any]
) -> dict[str, Any]:
    """Destroy the customer's key, the copies given out for earlier requests (unless a hold
    keeps them), and the keys of the person's earlier closed requests."""
    customer_id = request.customer_id
    if customer_id is None:
        return {"customer_key": False, "earlier_exports": 0, "earlier_request_keys": 0}
    holds = await legal_holds.holds_on(customer_id)
    exports_held = any(r["category"] == "dsr.exports" for r in planned.get("retained", [])) or (
        any(h.category == "dsr.exports" for h in holds)
    )
    exports, keys = await _forget_earlier_requests(vault, request, keep_copies=exports_held)
    await register.note(
        customer_id,
        "erasure",
        request_id=request.id,
        kept=keep_of(planned).categories,
        identifiers=await _identifiers(request) if planned.get("found") else [],
    )
    return {
        "customer_key": await vault.shred(customer_id),
        "earlier_exports": exports,
        "earlier_request_keys": keys,
    }


async def _forget_earlier_requests(
    vault: Vault, request: DataSubjectRequest, *, keep_copies: bool
) -> tuple[int, int]:
    """Delete the copies given out for the person's earlier requests (unless ``keep_copies``:
    a hold keeps them) and destroy those closed requests' keys (not of one whose kept copy is
    sealed under it); returns (copies deleted, keys destroyed)."""
    earlier = await DataSubjectRequest.filter(customer_id=request.customer_id).exclude(
        id=request.id
    )
    ids = [r.id for r in earlier]
    with_copies = set(
        await AccessExport.filter(request_id__in=ids).values_list("request_id", flat=True)
    )
    copies = 0 if keep_copies else await AccessExport.filter(request_id__in=ids).delete()
    keys = await destroy_request_secrets(
        vault,
        [
            other.id
            for other in earlier
            if other.status in FINAL and not (keep_copies and other.id in with_copies)
        ],
    )
    return copies, keys


async def delete(request: DataSubjectRequest, keep: rights.Keep) -> dict[str, int]:
    """Delete the customer's rows (what holds keep stays, restricted)."""
    if request.customer_id is None:
        return {}
    return await delete_customer(request.customer_id, keep)


async def delete_customer(customer_id: uuid.UUID, keep: rights.Keep) -> dict[str, int]:
    """Delete the customer's rows and what matching keeps of them (what ``keep`` names stays,
    restricted). Idempotent."""
    merged = await customers.absorbed(customer_id)
    deleted = await rights.erase(customer_id, keep)
    deleted["match_records"] = await matching.forget([customer_id, *merged])
    return deleted


def certificate(request: DataSubjectRequest, settings: Settings) -> dict[str, Any]:
    """The erasure certificate: what was erased, what was kept and why; with its digest."""
    steps = request.progress.get("steps", {})
    planned = steps.get("plan", {})
    inventory = planned.get("inventory", {})
    retained = list(planned.get("retained", []))
    if planned.get("consent_entries"):
        retained.append(
            {
                "category": "consent_ledger",
                "count": planned["consent_entries"],
                "reason": CONSENT_LEDGER_REASON,
            }
        )
    retained.append({"category": "audit_trail", "reason": AUDIT_TRAIL_REASON})
    kept_types = {r["category"].split(".", 1)[1] for r in retained if "." in r["category"]}
    keep_all = any(r["category"] == "events" for r in retained)
    body: dict[str, Any] = {
        "certificate_id": str(uuid.uuid5(request.id, "erasure-certificate")),
        "request_id": str(request.id),
        "jurisdiction": request.jurisdiction.value,
        "received_at": request.received_at.isoformat(),
        "issued_at": clock.now().isoformat(),
        "controller": settings.controller_name,
        "customer_id": str(request.customer_id) if request.customer_id else None,
        "data_found": bool(planned.get("found")),
        "erased": {
            "profile_fields": inventory.get("profile_fields", []),
            "identities": inventory.get("identities", 0),
            "events": {
                kind: count
                for kind, count in inventory.get("events", {}).items()
                if not keep_all and kind not in kept_types
            },
            "source_records": (
                0
                if any(r["category"] == "source_records" for r in retained)
                else inventory.get("source_records", 0)
            ),
            "refused_values": inventory.get("refused_values", 0),
            "earlier_access_exports": steps.get("shred", {}).get("earlier_exports", 0),
        },
        "crypto_shredded": {
            "customer_key": steps.get("shred", {}).get("customer_key", False),
            "earlier_request_keys": steps.get("shred", {}).get("earlier_request_keys", 0),
        },
        "suppressed_identifiers": steps.get("suppress", {}).get("suppressed", 0),
        "retained": retained,
        "retained_data_is_restricted": True,
    }
    return _digested(body)


def _digested(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with the SHA-256 of its canonical JSON (any earlier digest left out)."""
    content = {k: v for k, v in body.items() if k != "sha256"}
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":")).encode()
    return {**content, "sha256": hashlib.sha256(canonical).hexdigest()}


def awaiting_release(request: DataSubjectRequest) -> list[dict[str, Any]]:
    """What the request's erasure kept for legal holds and has not erased since."""
    released = request.progress.get("released", {})
    planned = request.progress.get("steps", {}).get("plan", {})
    return [r for r in planned.get("retained", []) if r["category"] not in released]


async def erase_released(vault: Vault, request: DataSubjectRequest) -> list[str]:
    """Finish an erasure that legal holds interrupted (in the caller's transaction, with the
    request locked): what each ended hold kept is erased now, the key it was re-sealed under is
    destroyed once nothing is kept any more, and the certificate and timeline say so. Returns
    the categories erased now (none while every hold still applies, or while the customer
    themself is held)."""
    customer_id = request.customer_id
    pending = awaiting_release(request)
    if customer_id is None or not pending:
        return []
    holds = await legal_holds.holds_on(customer_id)
    if legal_holds.on_customer(holds, customer_id) is not None:
        return []
    active = {h.category for h in holds if h.category}
    still = rights.Keep.of(active)
    ended = [r for r in pending if r["category"] not in active and not still.keeps(r["category"])]
    if not ended:
        return []
    now = clock.now()
    deleted = await rights.erase(customer_id, still)
    exports = 0
    if any(r["category"] == "dsr.exports" for r in ended):
        exports, _ = await _forget_earlier_requests(vault, request, keep_copies=False)
    key_destroyed = bool(deleted["customer"]) and await vault.shred(
        rights.retention_owner(customer_id)
    )
    categories: list[str] = [r["category"] for r in ended]
    later = {
        "categories": categories,
        "holds_ended": sorted({r["hold_id"] for r in ended}),
        "erased_at": now.isoformat(),
        "events": deleted["events"],
        "source_records": deleted["source_records"],
        "earlier_access_exports": exports,
        "retained_key_destroyed": key_destroyed,
    }
    released = dict(request.progress.get("released", {}))
    released.update({r["category"]: now.isoformat() for r in ended})
    request.progress = {**request.progress, "released": released}
    if request.certificate is not None:
        request.certificate = _digested(
            {
                **request.certificate,
                "erased_later": [*request.certificate.get("erased_later", []), later],
                "retained_data_is_restricted": bool(awaiting_release(request)),
            }
        )
    await request.save(update_fields=["progress", "certificate"])
    note = (
        f"erased {', '.join(categories)} (events {deleted['events']}, source records "
        f"{deleted['source_records']}, access exports {exports})"
    )
    await add_event(SYSTEM, request, NewTimelineEntry(TimelineKind.RETAINED_DATA_ERASED, note))
    return categories


async def forget_requester(vault: Vault, request: DataSubjectRequest) -> bool:
    """Destroy the requester's contact details of a completed erasure once nothing waits to
    be sent to them; True when destroyed now."""
    if await Notification.exists(
        request_id=request.id, sent_at__isnull=True, attempts__lt=outbox.MAX_ATTEMPTS
    ):
        return False
    if not await destroy_request_secrets(vault, [request.id]):
        return False
    await add_event(SYSTEM, request, NewTimelineEntry(TimelineKind.REQUESTER_DETAILS_DESTROYED))
    return True


async def reapply(vault: Vault, record: register.ErasureRecord) -> tuple[bool, int]:
    """Carry out a registered erasure again (after a restore brought the person back), by the
    erasure's own steps: retain what was held, suppress, shred, delete. Idempotent; returns
    (whether anything of the customer was still there, identifiers newly suppressed)."""
    keep = rights.Keep.of(set(record.kept))
    await rights.keep_readable(vault, record.customer_id, keep)
    await identity.lock(index for _, index in record.identifiers)
    suppressed = await identity.suppress(record.identifiers, record.request_id)
    key_existed = await vault.shred(record.customer_id)
    deleted = await delete_customer(record.customer_id, keep)
    return key_existed or any(deleted.values()), suppressed
