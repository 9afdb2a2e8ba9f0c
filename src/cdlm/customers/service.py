"""Reading customers and rectifying them (the 360 view behind the API)."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tortoise.connection import get_connection
from tortoise.expressions import Q, Subquery
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.core import clock
from cdlm.core.errors import ErrorCode, FieldIssue, NotFound, ValidationFailed
from cdlm.core.identifiers import (
    IDENTIFYING_FIELDS,
    Identifier,
    IdentifierKind,
    InvalidIdentifier,
    parse,
)
from cdlm.core.principal import Principal
from cdlm.core.vocabulary import LawfulBasis, LifecycleStage, SourceKind
from cdlm.customers import attributes
from cdlm.customers.ingest import open_invalid_fields, rescore
from cdlm.customers.models import Customer, SourceRecord
from cdlm.customers.survivorship import Provenance, remove, survive
from cdlm.identity import service as identity
from cdlm.quality import refused
from cdlm.quality.fields import INPUT_PATHS, PROFILE_FIELDS
from cdlm.quality.validate import validate_profile
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import Vault

RECTIFICATION_SYSTEM = "cdlm-staff"


@dataclass(frozen=True)
class CustomerFilter:
    """Criteria of the customer list; all optional, combined with AND."""

    updated_since: datetime | None = None
    quality_below: float | None = None
    source_system: str | None = None
    lifecycle_stage: LifecycleStage | None = None
    include_restricted: bool = False


def customers(criteria: CustomerFilter) -> QuerySet[Customer]:
    """Customers matching ``criteria`` (paginate it)."""
    query = Customer.filter(erased_at__isnull=True, merged_into_id__isnull=True)
    if not criteria.include_restricted:
        query = query.filter(restricted_at__isnull=True)
    if criteria.updated_since is not None:
        query = query.filter(updated_at__gte=criteria.updated_since)
    if criteria.quality_below is not None:
        query = query.filter(quality_score__lt=criteria.quality_below)
    if criteria.lifecycle_stage is not None:
        query = query.filter(lifecycle_stage=criteria.lifecycle_stage)
    if criteria.source_system is not None:
        query = query.filter(
            id__in=Subquery(
                SourceRecord.filter(source_system=criteria.source_system).values("customer_id")
            )
        )
    return query


async def exists(customer_id: uuid.UUID) -> bool:
    """True when a customer with this id exists (an erased one whose held rows remain does
    not: nothing may use it, nor does a profile merged into another)."""
    return await Customer.exists(
        id=customer_id, erased_at__isnull=True, merged_into_id__isnull=True
    )


async def processable(customer_id: uuid.UUID) -> bool:
    """True when the customer exists and their data may be processed: not restricted
    (GDPR Art. 18: stored only) and not erased."""
    return bool(await processable_among([customer_id]))


async def processable_among(
    customer_ids: Iterable[uuid.UUID], at: datetime | None = None
) -> set[uuid.UUID]:
    """Which of these customers exist and may be processed (at ``at``: not restricted since
    before it); one query. Erased customers whose held rows remain are restricted."""
    wanted = list(set(customer_ids))
    if not wanted:
        return set()
    query = Customer.filter(id__in=wanted, erased_at__isnull=True, merged_into_id__isnull=True)
    if at is None:
        query = query.filter(restricted_at__isnull=True)
    else:
        query = query.filter(Q(restricted_at__isnull=True) | Q(restricted_at__gt=at))
    return {uuid.UUID(str(i)) for i in await query.values_list("id", flat=True)}


async def open_profiles(
    vault: Vault, customer_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, dict[str, Any]]:
    """The decrypted profiles (profile field name -> value) of the processable customers among
    ``customer_ids`` (two queries); in memory only: the caller must not write them anywhere
    unsealed. Restricted, erased and merged-away customers, and shredded keys, are absent."""
    wanted = list(set(customer_ids))
    if not wanted:
        return {}
    rows = await Customer.filter(
        id__in=wanted,
        erased_at__isnull=True,
        merged_into_id__isnull=True,
        restricted_at__isnull=True,
    ).only("id", "profile_sealed")
    keys = await vault.customer_keys([r.id for r in rows])
    return {
        r.id: dict(vault.open(keys[r.id], r.id, sealed_for.PROFILE, bytes(r.profile_sealed)))
        for r in rows
        if r.id in keys and r.profile_sealed
    }


async def count() -> int:
    """How many customers aggregates may count (not erased, not restricted)."""
    return await Customer.filter(
        erased_at__isnull=True, restricted_at__isnull=True, merged_into_id__isnull=True
    ).count()


async def get_customer(customer_id: uuid.UUID) -> Customer:
    """One customer; the id of a profile merged into another answers with the survivor;
    :class:`NotFound` when there is none."""
    customer = await Customer.get_or_none(id=customer_id, erased_at__isnull=True)
    if customer is not None and customer.merged_into_id is not None:
        customer = await Customer.get_or_none(id=customer.merged_into_id, erased_at__isnull=True)
    if customer is None:
        raise NotFound("No customer has this id.", field="id")
    return customer


async def lock_live(customer_id: uuid.UUID, field: str = "input.customerId") -> uuid.UUID:
    """The id a write about this customer goes to, its row locked until the transaction ends
    (a lock that lets other writers in but makes a merge wait, or be waited for): the
    customer's own, or its survivor's when it was merged into another. :class:`NotFound` when
    there is none (or it was erased)."""
    client = get_connection("default")
    for _ in range(3):  # a survivor merged meanwhile redirects once more
        rows = await client.execute_query_dict(
            'SELECT "merged_into_id" FROM "customers" WHERE "id" = $1 AND "erased_at" IS NULL '
            "FOR KEY SHARE",
            [customer_id],
        )
        if not rows:
            break
        if rows[0]["merged_into_id"] is None:
            return customer_id
        customer_id = rows[0]["merged_into_id"]
    raise NotFound("No customer has this id.", field=field)


async def survivors(customer_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """For each id of a profile merged into another, the survivor's id (one query; merges keep
    the redirects one step long)."""
    wanted = list(set(customer_ids))
    if not wanted:
        return {}
    rows = await Customer.filter(id__in=wanted, merged_into_id__isnull=False).values_list(
        "id", "merged_into_id"
    )
    return {uuid.UUID(str(i)): uuid.UUID(str(s)) for i, s in rows}


async def absorbed(customer_id: uuid.UUID) -> list[uuid.UUID]:
    """The profiles merged into this one (and not unmerged)."""
    rows = (
        await Customer.filter(merged_into_id=customer_id)
        .order_by("id")
        .values_list("id", flat=True)
    )
    return [uuid.UUID(str(i)) for i in rows]


async def find_by_identifier(vault: Vault, kind: IdentifierKind, value: str) -> Customer | None:
    """The customer an identifier belongs to, if any (exact match on the normalized value)."""
    try:
        identifier = parse(kind, value)
    except InvalidIdentifier as error:
        raise ValidationFailed(error.message, field="value", code=error.code) from None
    await vault.ready()
    owners = await identity.owners(vault, [identifier])
    owner = owners.get(identifier)
    return await Customer.get_or_none(id=owner) if owner else None


async def update_customer(
    actor: Principal,
    vault: Vault,
    customer_id: uuid.UUID,
    changes: dict[str, str | None],
    *,
    lifecycle_stage: LifecycleStage | None = None,
    trust: dict[SourceKind, int] | None = None,
) -> Customer:
    """Rectify profile fields (GDPR Art. 16): a value replaces, None clears.

    Staff corrections outrank every source; the lineage of each changed field names the
    rectification. A corrected or cleared email or phone was wrong, so its identity stops
    matching; the new one becomes an identity. Invalid values are refused with their field
    paths and nothing is written.
    """
    unknown = set(changes) - set(PROFILE_FIELDS)
    if unknown:
        raise ValueError(f"unknown profile fields: {sorted(unknown)}")
    blank = [n for n, v in changes.items() if v is not None and not v.strip()]
    if blank:
        raise ValidationFailed.from_issues(
            [
                FieldIssue(
                    f"input.changes.{INPUT_PATHS[n]}",
                    ErrorCode.REQUIRED,
                    "Send null to clear a field; a value cannot be blank.",
                )
                for n in blank
            ]
        )
    setting = {name: value for name, value in changes.items() if value is not None}
    clearing = [name for name, value in changes.items() if value is None]
    validated = validate_profile(setting, prefix="input.changes")
    if validated.issues:
        raise ValidationFailed.from_issues(validated.issues)
    if not changes and lifecycle_stage is None:
        raise ValidationFailed("Nothing to change.", field="input")
    await vault.ready()
    now = clock.now()
    new_identifiers = [
        Identifier(kind, "", validated.values[name])
        for name, kind in IDENTIFYING_FIELDS.items()
        if name in validated.values
    ]
    async with in_transaction():
        # Identifier locks first, then the row: the same order as ingestion (no deadlock).
        await identity.lock(vault.blind_index(i.index_kind, i.value) for i in new_identifiers)
        customer_id = await lock_live(customer_id, "input.id")  # a merged id: its survivor
        customer = (
            await Customer.filter(id=customer_id, erased_at__isnull=True)
            .select_for_update(no_key=True)
            .first()
        )
        if customer is None:
            raise NotFound("No customer has this id.", field="input.id")
        key = await vault.customer_key(customer_id)
        owners = await identity.owners(vault, new_identifiers)
        taken = [i for i, owner in owners.items() if owner != customer_id]
        if taken:
            raise ValidationFailed.from_issues(
                [
                    FieldIssue(
                        f"input.changes.{i.kind.value}",
                        ErrorCode.IDENTITY_CONFLICT,
                        "This identifier belongs to another customer.",
                    )
                    for i in taken
                ]
            )
        values: dict[str, str] = vault.open(
            key, customer_id, sealed_for.PROFILE, customer.profile_sealed
        )
        if "postal_code" in setting and "country" not in setting and values.get("country"):
            # A corrected postal code alone is checked against the country the profile has.
            postal = {"postal_code": setting["postal_code"], "country": values["country"]}
            again = validate_profile(postal, prefix="input.changes")
            if again.issues:
                raise ValidationFailed.from_issues(again.issues)
            validated.values["postal_code"] = again.values["postal_code"]
        replaced = [
            Identifier(kind, "", values[name])
            for name, kind in IDENTIFYING_FIELDS.items()
            if name in changes and name in values and values[name] != validated.values.get(name)
        ]
        lineage = dict(customer.lineage)
        record_id = uuid.uuid4()
        provenance = Provenance(str(record_id), RECTIFICATION_SYSTEM, SourceKind.STAFF, now)
        survive(values, lineage, validated.values, provenance, trust)
        for name in clearing:
            remove(values, lineage, name, provenance, trust)
        customer.lineage = lineage
        customer.profile_sealed = vault.seal(key, customer_id, sealed_for.PROFILE, values)
        customer.present_fields = sorted(values)
        if lifecycle_stage is not None:
            customer.lifecycle_stage = lifecycle_stage
        customer.updated_at = now
        await refused.resolve([(customer_id, name) for name in validated.values], now)
        open_invalid = (await open_invalid_fields([customer_id]))[customer_id]
        rescore(customer, values, open_invalid, now, last_update=now)
        await customer.save()
        await attributes.refresh(
            [(customer_id, attributes.derive(values, customer.source_systems, now.date()))], now
        )
        await SourceRecord.create(
            id=record_id,
            customer_id=customer_id,
            source_system=RECTIFICATION_SYSTEM,
            source_kind=SourceKind.STAFF,
            collected_at=now,
            received_at=now,
            lawful_basis=LawfulBasis.LEGAL_OBLIGATION,
            purpose="rectification",
            payload_sealed=vault.seal(
                key,
                customer_id,
                sealed_for.source_record(record_id),
                {"profile": changes, "by": str(actor.id)},
            ),
            outcome="rectified",
            matched_rule=None,
        )
        await identity.detach(
            customer_id, [vault.blind_index(i.index_kind, i.value) for i in replaced]
        )
        await identity.save(
            [
                identity.identity_row(
                    customer_id,
                    i,
                    vault.blind_index(i.index_kind, i.value),
                    vault.seal(key, customer_id, sealed_for.IDENTITY, i.value),
                    record_id,
                    now,
                )
                for i in new_identifiers
                if i not in owners
            ]
        )
        await audit.record(
            actor,
            "customer.rectify",
            target_type="customer",
            target_id=customer_id,
            fields=list(changes),
        )
    return customer


def input_path(name: str) -> str:
    """The input path of a profile field (``address.city`` for ``city``)."""
    return INPUT_PATHS[name]
