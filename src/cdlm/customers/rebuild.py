"""Rebuilding a profile from every source record it holds (after a merge or an unmerge).

Survivorship is replayed over the records in the order they were collected: the values, their
lineage and the source systems come out as if the records had always belonged to this profile.
A rectification (staff) record replays its corrections and clearings. An email or phone that
identifies another customer stays out, as it did when the record arrived.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from cdlm.core import clock
from cdlm.core.identifiers import IDENTIFYING_FIELDS, Identifier
from cdlm.core.vocabulary import SourceKind
from cdlm.customers import attributes
from cdlm.customers.ingest import open_invalid_fields, rescore
from cdlm.customers.models import Customer, SourceRecord
from cdlm.customers.survivorship import Provenance, remove, survive
from cdlm.identity import service as identity
from cdlm.quality.fields import PROFILE_FIELDS
from cdlm.quality.validate import validate_profile
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import Vault


def _replay(
    vault: Vault,
    key: bytes,
    customer_id: uuid.UUID,
    records: list[SourceRecord],
    trust: dict[SourceKind, int] | None,
) -> tuple[dict[str, str], dict[str, dict[str, Any]]]:
    values: dict[str, str] = {}
    lineage: dict[str, dict[str, Any]] = {}
    for record in records:
        payload = vault.open(
            key, customer_id, sealed_for.source_record(record.id), record.payload_sealed
        )
        sent: dict[str, str | None] = {
            name: value
            for name, value in (payload.get("profile") or {}).items()
            if name in PROFILE_FIELDS
        }
        provenance = Provenance(
            str(record.id), record.source_system, record.source_kind, record.collected_at
        )
        valid = validate_profile({n: v for n, v in sent.items() if v is not None}).values
        survive(values, lineage, valid, provenance, trust)
        if record.source_kind is SourceKind.STAFF:
            for name in [n for n, v in sent.items() if v is None]:
                remove(values, lineage, name, provenance, trust)
    return values, lineage


async def rebuild(
    vault: Vault,
    customer: Customer,
    key: bytes,
    trust: dict[SourceKind, int] | None = None,
    now: datetime | None = None,
) -> dict[str, str]:
    """Recompute ``customer``'s profile, lineage, source systems and scores from its source
    records, and save them; returns the values (in memory only)."""
    now = now or clock.now()
    records = list(
        await SourceRecord.filter(customer_id=customer.id).order_by("collected_at", "received_at")
    )
    values, lineage = _replay(vault, key, customer.id, records, trust)
    await vault.ready()
    indexes = {
        name: vault.blind_index(Identifier(kind, "", values[name]).index_kind, values[name])
        for name, kind in IDENTIFYING_FIELDS.items()
        if name in values
    }
    owners = await identity.index_owners(indexes.values())
    for name, index in indexes.items():
        if owners.get(index, customer.id) != customer.id:
            del values[name]
            lineage.pop(name, None)
    customer.lineage = lineage
    customer.source_systems = sorted(
        {r.source_system for r in records if r.source_kind is not SourceKind.STAFF}
    )
    customer.profile_sealed = vault.seal(key, customer.id, sealed_for.PROFILE, values)
    customer.present_fields = sorted(values)
    customer.updated_at = now
    open_invalid = (await open_invalid_fields([customer.id]))[customer.id]
    rescore(customer, values, open_invalid, now)
    await customer.save()
    await attributes.refresh(
        [(customer.id, attributes.derive(values, customer.source_systems, now.date()))], now
    )
    return values
