"""What data subject rights need from the customer data: a copy of everything held, the
restriction flag, and erasure (with whatever a legal hold keeps).

Held categories name what a legal hold keeps: ``events`` (all events), ``events.<type>``
(events of one type, e.g. ``events.purchase``) and ``source_records``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.core import clock
from cdlm.core.errors import InvalidStateTransition, NotFound, ValidationFailed
from cdlm.core.principal import Principal
from cdlm.core.text import text_problem
from cdlm.customers import attributes
from cdlm.customers.models import Customer, Event, SourceRecord
from cdlm.customers.service import lock_live
from cdlm.identity import service as identity
from cdlm.quality import refused as refused_values
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import Owner, Vault


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def event_document(event: Any, properties: Any) -> dict[str, Any]:
    """An event (a row or a read value) as JSON-ready data, with its opened ``properties``."""
    return {
        "type": event.type,
        "channel": event.channel,
        "occurred_at": _iso(event.occurred_at),
        "amount": str(event.amount) if event.amount is not None else None,
        "currency": event.currency,
        "source_system": event.source_system,
        "item_id": event.item_id,
        "properties": properties,
        # Feedback scores kept in clear (cdlm.customers.feedback); None on other events.
        "sentiment": event.sentiment,
        "nps": event.nps,
        "csat": event.csat,
    }


def event_json(vault: Vault, key: bytes | None, event: Event) -> dict[str, Any]:
    """An event row as JSON-ready data, its properties opened with ``key`` (None:
    unreadable)."""
    customer_id: uuid.UUID = event.customer_id  # type: ignore[attr-defined]
    return event_document(
        event,
        (
            vault.open(key, customer_id, sealed_for.EVENT_PROPERTIES, event.properties_sealed)
            if key is not None and event.properties_sealed is not None
            else None
        ),
    )


def source_record_json(vault: Vault, key: bytes | None, record: SourceRecord) -> dict[str, Any]:
    """A source record as JSON-ready data, what it sent opened with ``key`` (None:
    unreadable)."""
    customer_id: uuid.UUID = record.customer_id  # type: ignore[attr-defined]
    return {
        "source_system": record.source_system,
        "source_kind": record.source_kind.value,
        "collected_at": _iso(record.collected_at),
        "lawful_basis": record.lawful_basis.value,
        "purpose": record.purpose,
        "received": (
            vault.open(key, customer_id, sealed_for.source_record(record.id), record.payload_sealed)
            if key is not None
            else None
        ),
    }


async def restrict(customer_id: uuid.UUID) -> bool:
    """Flag the customer as restricted (stored, not processed); False when already so."""
    updated = await Customer.filter(id=customer_id, restricted_at__isnull=True).update(
        restricted_at=clock.now()
    )
    return updated > 0


async def lift_restriction(actor: Principal, customer_id: uuid.UUID, reason: str) -> Customer:
    """Let the customer's data be processed again (GDPR Art. 18(3): tell them first); the
    reason goes to the audit trail's request and the customer must be restricted. The id of a
    profile merged into another lifts the survivor's restriction (the customer it shows)."""
    text = reason.strip()
    if not text or len(text) > 500 or text_problem(text):
        raise ValidationFailed("Give the reason (at most 500 characters).", field="input.reason")
    async with in_transaction():
        customer_id = await lock_live(customer_id, "input.customerId")
        customer = (
            await Customer.filter(id=customer_id, erased_at__isnull=True)
            .select_for_update(no_key=True)
            .first()
        )
        if customer is None:
            raise NotFound("No customer has this id.", field="input.customerId")
        if customer.restricted_at is None:
            raise InvalidStateTransition(
                "The customer's processing is not restricted.", field="input.customerId"
            )
        customer.restricted_at = None
        customer.updated_at = clock.now()
        await customer.save(update_fields=["restricted_at", "updated_at"])
        await audit.record(
            actor, "customer.lift_restriction", target_type="customer", target_id=customer_id
        )
    return customer


@dataclass(frozen=True)
class Keep:
    """What a legal hold keeps of one customer through erasure."""

    all_events: bool = False
    event_types: frozenset[str] = frozenset()
    source_records: bool = False

    @classmethod
    def of(cls, categories: set[str]) -> Keep:
        return cls(
            all_events="events" in categories,
            event_types=frozenset(
                c.split(".", 1)[1] for c in categories if c.startswith("events.")
            ),
            source_records="source_records" in categories,
        )

    @property
    def anything(self) -> bool:
        return self.all_events or bool(self.event_types) or self.source_records

    @property
    def categories(self) -> set[str]:
        """The held categories this keeps (``Keep.of(keep.categories) == keep``)."""
        kept = {f"events.{t}" for t in self.event_types}
        kept |= {
            c
            for c, on in (("events", self.all_events), ("source_records", self.source_records))
            if on
        }
        return kept

    def keeps_event(self, event_type: str) -> bool:
        return self.all_events or event_type in self.event_types

    def keeps(self, category: str) -> bool:
        """Whether the whole held ``category`` (``events``, ``events.<type>`` or
        ``source_records``) is still kept."""
        if category == "events":
            return self.all_events
        if category.startswith("events."):
            return self.keeps_event(category.split(".", 1)[1])
        return category == "source_records" and self.source_records


@dataclass
class Inventory:
    """What is held about a customer, counted per category (what erasure will remove)."""

    found: bool
    profile_fields: list[str] = field(default_factory=list)
    identities: int = 0
    events: dict[str, int] = field(default_factory=dict)
    source_records: int = 0
    refused_values: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "found": self.found,
            "profile_fields": self.profile_fields,
            "identities": self.identities,
            "events": self.events,
            "source_records": self.source_records,
            "refused_values": self.refused_values,
        }


async def inventory(customer_id: uuid.UUID) -> Inventory:
    """Counts of everything held about the customer (names and counts, never values)."""
    customer = await Customer.get_or_none(id=customer_id)
    if customer is None or customer.erased_at is not None:
        return Inventory(found=False)
    events: dict[str, int] = {}
    for event_type in await Event.filter(customer_id=customer_id).values_list("type", flat=True):
        events[str(event_type)] = events.get(str(event_type), 0) + 1
    identities = await identity.blind_indexes_of(customer_id)
    return Inventory(
        found=True,
        profile_fields=list(customer.present_fields),
        identities=len(identities),
        events=dict(sorted(events.items())),
        source_records=await SourceRecord.filter(customer_id=customer_id).count(),
        refused_values=len(await refused_values.of_customer(customer_id)),
    )


def retention_owner(customer_id: uuid.UUID) -> uuid.UUID:
    """The id that owns the key of data a hold keeps after the customer's key is destroyed."""
    return uuid.uuid5(customer_id, "retained-under-legal-hold")


async def keep_readable(vault: Vault, customer_id: uuid.UUID, keep: Keep) -> int:
    """Re-seal what a hold keeps under a key of its own (owned by :func:`retention_owner`), so
    it outlives the customer's key; returns how many rows were re-sealed. Idempotent."""
    if not keep.anything:
        return 0
    owner = retention_owner(customer_id)
    keys = await vault.customer_keys([customer_id, owner])
    if customer_id not in keys:
        return 0  # already shredded: the kept rows were re-sealed before that
    source = Owner(customer_id, keys[customer_id])
    target = Owner(owner, keys.get(owner) or await vault.create_customer_key(owner))
    moved = 0
    for event in await Event.filter(customer_id=customer_id, properties_sealed__isnull=False):
        if keep.keeps_event(event.type) and event.properties_sealed is not None:
            event.properties_sealed = vault.reseal(
                event.properties_sealed, sealed_for.EVENT_PROPERTIES, source, target
            )
            await event.save(update_fields=["properties_sealed"])
            moved += 1
    if keep.source_records:
        for record in await SourceRecord.filter(customer_id=customer_id):
            record.payload_sealed = vault.reseal(
                record.payload_sealed, sealed_for.source_record(record.id), source, target
            )
            await record.save(update_fields=["payload_sealed"])
            moved += 1
    return moved


async def erase(customer_id: uuid.UUID, keep: Keep) -> dict[str, int]:
    """Delete the customer's rows except what ``keep`` holds (call after destroying the key).

    When nothing of the customer remains, the customer row goes too; otherwise it stays as an
    empty, restricted record marked erased, so the kept rows still belong to someone.
    Idempotent: run again when a hold ends, it erases what that hold kept.
    """
    deleted: dict[str, int] = {"events": 0, "source_records": 0}
    if not keep.all_events:
        events = Event.filter(customer_id=customer_id)
        if keep.event_types:
            events = events.exclude(type__in=list(keep.event_types))
        deleted["events"] = await events.delete()
    if not keep.source_records:
        deleted["source_records"] = await SourceRecord.filter(customer_id=customer_id).delete()
    deleted["identities"] = await identity.forget_customer(customer_id)
    # The ids of profiles merged into this one redirect to it: nothing is left behind them.
    deleted["merged_profiles"] = await Customer.filter(merged_into_id=customer_id).delete()
    deleted["refused_values"] = await refused_values.forget(customer_id)
    await attributes.forget([customer_id])
    remains = await Event.exists(customer_id=customer_id) or await SourceRecord.exists(
        customer_id=customer_id
    )
    deleted["customer"] = 0
    if not remains:
        deleted["customer"] = await Customer.filter(id=customer_id).delete()
    elif await Customer.exists(id=customer_id, erased_at__isnull=True):
        await erase_profile(customer_id, restrict=True)
    return deleted


async def erase_profile(customer_id: uuid.UUID, *, restrict: bool = False) -> None:
    """Empty the customer's profile and mark them erased: the row stays, naming nobody."""
    now = clock.now()
    changes: dict[str, Any] = {
        "profile_sealed": b"",
        "present_fields": [],
        "lineage": {},
        "completeness": 0.0,
        "validity": 1.0,
        "quality_score": 0.0,
        "updated_at": now,
        "erased_at": now,
    }
    if restrict:
        changes["restricted_at"] = now
    await Customer.filter(id=customer_id).update(**changes)
    await attributes.forget([customer_id])
