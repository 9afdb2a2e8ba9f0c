"""A copy of everything held about a customer (GDPR Art. 15 access and Art. 20 portability),
read through the customer 360 reader like every other read of personal data."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from cdlm.core.vocabulary import LawfulBasis
from cdlm.customer360 import reader
from cdlm.customer360.values import EventWindow, Parts
from cdlm.customers import attributes
from cdlm.customers.models import SourceRecord
from cdlm.customers.rights import event_document, source_record_json
from cdlm.quality import refused as refused_values
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import MissingKey, Vault

#: Lawful bases under which data counts for portability (GDPR Art. 20(1)(a)).
PORTABLE_BASES = frozenset({LawfulBasis.CONSENT, LawfulBasis.CONTRACT})

#: Every event a customer has (newest first, as every page of events is read).
EVERY_EVENT = EventWindow(first=2**62)
EVERYTHING = Parts(profile=True, identities=True, events=frozenset({EVERY_EVENT}))


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


async def copy_of(
    vault: Vault, customer_id: uuid.UUID, *, portable_only: bool = False
) -> dict[str, Any] | None:
    """Everything held about the customer, decrypted, as JSON-ready data; None when there is
    no such customer. ``portable_only`` keeps what the person provided under consent or a
    contract (portability) and leaves out what cdlm derived. :class:`MissingKey` when the
    customer's data key is gone."""
    read = (await reader.read(vault, [customer_id], EVERYTHING, follow_merges=False)).get(
        customer_id
    )
    if read is None:
        return None
    if not read.readable:
        raise MissingKey(str(customer_id))
    key = await vault.customer_key(customer_id)  # cached by the read
    customer = read.customer
    records = await SourceRecord.filter(customer_id=customer_id).order_by("collected_at")
    if portable_only:
        records = [r for r in records if r.lawful_basis in PORTABLE_BASES]
    copy: dict[str, Any] = {
        "customer_id": str(customer_id),
        "profile": read.profile,
        "identities": [
            {
                "kind": i.kind.value,
                "namespace": i.namespace or None,
                "value": i.value,
                "since": _iso(i.created_at),
            }
            for i in read.identities or ()
        ],
        "events": [event_document(e, e.properties) for e in reversed(read.events[EVERY_EVENT])],
        "source_records": [source_record_json(vault, key, r) for r in records],
    }
    if portable_only:
        return copy
    refused = await refused_values.of_customer(customer_id)
    copy.update(
        {
            "created_at": _iso(customer.created_at),
            "updated_at": _iso(customer.updated_at),
            "lifecycle_stage": customer.lifecycle_stage.value,
            "profile_lineage": customer.lineage,
            "source_systems": customer.source_systems,
            "last_activity_at": _iso(customer.last_activity_at),
            "quality": {
                "score": customer.quality_score,
                "completeness": customer.completeness,
                "validity": customer.validity,
            },
            "restricted_since": _iso(customer.restricted_at),
            "analysis": await attributes.document_of(customer_id),
            "refused_values": [
                {
                    "field": r.field,
                    "reason": r.message,
                    "value": vault.open(
                        key, customer_id, sealed_for.invalid_value(r.field), r.value_sealed
                    ),
                    "received_at": _iso(r.created_at),
                    "replaced_at": _iso(r.resolved_at),
                }
                for r in refused
            ],
        }
    )
    return copy
