"""Deterministic identity resolution.

Incoming identifiers are normalized and looked up by blind index; the decision itself is the pure
:func:`cdlm.identity.decision.decide`. The strongest identifier that already belongs to a customer
decides the match (external id, then email, then phone), unless the record contradicts that
customer (:mod:`cdlm.identity.agreement`): another external id from the same system, a different
name or birth date, or, on a phone match, another email without names that agree. A contradicted
candidate is passed over; when no candidate stands, the record becomes a new profile and each
contradicted match is recorded as an :class:`IdentityConflict` for review, so one shared
identifier never glues two people together. Identifiers beyond a kind's limit, or owned by
another customer, are not attached. Concurrent ingests of the same identifiers are serialized
with advisory locks on their blind indexes.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from tortoise.connection import get_connection
from tortoise.expressions import Q

from cdlm.core import clock
from cdlm.core.identifiers import Identifier, IdentifierKind
from cdlm.core.locks import lock_names
from cdlm.identity.decision import PassedOver
from cdlm.identity.decision import decide as decide  # the rules, re-exported for callers
from cdlm.identity.decision import ordered as ordered
from cdlm.identity.models import Identity, IdentityConflict, Suppression
from cdlm.reassign import SealedColumn, Table
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import Vault

#: Identities, as a merge moves them.
TABLE = Table("identities", sealed=SealedColumn("value_sealed", lambda _: sealed_for.IDENTITY))


async def lock(indexes: Iterable[str]) -> None:
    """Serialize transactions touching the same identifiers (held until commit)."""
    await lock_names(indexes)


def blind_indexes(vault: Vault, identifiers: Iterable[Identifier]) -> dict[Identifier, str]:
    """Each identifier's blind index: compute them once and pass them on."""
    return {i: vault.blind_index(i.index_kind, i.value) for i in identifiers}


async def owners(vault: Vault, identifiers: Iterable[Identifier]) -> dict[Identifier, uuid.UUID]:
    """Which customer owns each identifier (one query)."""
    return await owners_of(blind_indexes(vault, identifiers))


async def owners_of(indexes: Mapping[Identifier, str]) -> dict[Identifier, uuid.UUID]:
    """:func:`owners` of identifiers whose blind indexes the caller has already computed."""
    wanted = {index: identifier for identifier, index in indexes.items()}
    if not wanted:
        return {}
    found: dict[Identifier, uuid.UUID] = {}
    rows = await Identity.filter(blind_index__in=list(wanted)).values(
        "blind_index", "kind", "namespace", "customer_id"
    )
    for row in rows:
        identifier = wanted.get(row["blind_index"])
        if (
            identifier is not None
            and identifier.kind == row["kind"]
            and identifier.namespace == row["namespace"]
        ):
            found[identifier] = row["customer_id"]
    return found


async def held_counts(
    customer_ids: Iterable[uuid.UUID],
) -> dict[uuid.UUID, Counter[tuple[IdentifierKind, str]]]:
    """How many identifiers of each (kind, namespace) each customer holds (one query)."""
    wanted = list(set(customer_ids))
    counts: dict[uuid.UUID, Counter[tuple[IdentifierKind, str]]] = {c: Counter() for c in wanted}
    if wanted:
        rows = await Identity.filter(customer_id__in=wanted).values_list(
            "customer_id", "kind", "namespace"
        )
        for customer_id, kind, namespace in rows:
            counts[customer_id][(IdentifierKind(kind), namespace)] += 1
    return counts


def identity_row(
    customer_id: uuid.UUID,
    identifier: Identifier,
    blind_index: str,
    sealed_value: bytes,
    source_record_id: uuid.UUID,
    now: datetime,
) -> Identity:
    """A new (unsaved) identity of ``customer_id``; save many at once with :func:`save`."""
    return Identity(
        id=uuid.uuid4(),
        customer_id=customer_id,
        kind=identifier.kind,
        namespace=identifier.namespace,
        blind_index=blind_index,
        value_sealed=sealed_value,
        source_record_id=source_record_id,
        created_at=now,
    )


async def save(rows: list[Identity]) -> None:
    """Insert identities with one statement (call with the identifiers locked)."""
    if rows:
        await Identity.bulk_create(rows)


async def detach(customer_id: uuid.UUID, blind_indexes: list[str]) -> int:
    """Stop identifiers from matching the customer (a rectified value was wrong)."""
    if not blind_indexes:
        return 0
    return await Identity.filter(customer_id=customer_id, blind_index__in=blind_indexes).delete()


async def of_customers(customer_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Identity]]:
    """Each customer's identities, strongest kind first (one query)."""
    grouped: dict[uuid.UUID, list[Identity]] = {c: [] for c in customer_ids}
    for row in await Identity.filter(customer_id__in=customer_ids).order_by("kind", "created_at"):
        grouped[row.customer_id].append(row)  # type: ignore[attr-defined]
    return grouped


def conflict_rows(
    customer_id: uuid.UUID,
    passed_over: list[PassedOver],
    indexes: Mapping[Identifier, str],
    source_record_id: uuid.UUID,
    now: datetime,
) -> list[IdentityConflict]:
    """New (unsaved) conflicts between ``customer_id`` and the customers it was kept apart
    from; save many at once with :func:`save_conflicts`."""
    return [
        IdentityConflict(
            id=uuid.uuid4(),
            customer_id=customer_id,
            other_customer_id=p.customer_id,
            identifier_kind=p.identifier.kind,
            blind_index=indexes[p.identifier],
            reasons=[r.value for r in p.reasons],
            source_record_id=source_record_id,
            created_at=now,
        )
        for p in passed_over
    ]


async def save_conflicts(rows: list[IdentityConflict]) -> None:
    """Insert conflicts with one statement."""
    if rows:
        await IdentityConflict.bulk_create(rows)


async def shared(blind_index: str) -> bool:
    """True when an unresolved conflict says two customers share this identifier."""
    return await IdentityConflict.exists(blind_index=blind_index, resolved_at__isnull=True)


async def kept_apart(blind_index: str, customer_id: uuid.UUID) -> bool:
    """True when ``customer_id`` was kept apart from the owner of this identifier, which they
    share (an unresolved conflict): the identifier is theirs too."""
    return await IdentityConflict.exists(
        blind_index=blind_index, customer_id=customer_id, resolved_at__isnull=True
    )


async def forget_customer(customer_id: uuid.UUID) -> int:
    """Delete every identity of the customer and the conflicts they are part of (erasure)."""
    await IdentityConflict.filter(
        Q(customer_id=customer_id) | Q(other_customer_id=customer_id)
    ).delete()
    return await Identity.filter(customer_id=customer_id).delete()


async def suppress(
    entries: Iterable[tuple[IdentifierKind, str]], request_id: uuid.UUID | None
) -> int:
    """Remember blind indexes of an erased person so the next import does not re-create
    them; returns how many were new. Idempotent."""
    unique = {index: kind for kind, index in entries}
    if not unique:
        return 0
    rows = await get_connection("default").execute_query_dict(
        'INSERT INTO "suppressed_identifiers" ("blind_index", "kind", "request_id", "created_at") '
        "SELECT i, k, $3, $4 FROM unnest($1::text[], $2::text[]) AS u(i, k) "
        'ON CONFLICT ("blind_index") DO NOTHING RETURNING "blind_index"',
        [list(unique), [IdentifierKind(k).value for k in unique.values()], request_id, clock.now()],
    )
    return len(rows)


async def suppressed(blind_indexes: Iterable[str]) -> set[str]:
    """Which of these blind indexes belong to erased people (one query)."""
    wanted = list(set(blind_indexes))
    if not wanted:
        return set()
    found = await Suppression.filter(blind_index__in=wanted).values_list("blind_index", flat=True)
    return {str(index) for index in found}


async def blind_indexes_of(customer_id: uuid.UUID) -> list[tuple[IdentifierKind, str]]:
    """(kind, blind index) of each identity of the customer."""
    rows = await Identity.filter(customer_id=customer_id).values_list("kind", "blind_index")
    return [(IdentifierKind(kind), str(index)) for kind, index in rows]


async def retarget_conflicts(
    merged_id: uuid.UUID, survivor_id: uuid.UUID, now: datetime
) -> dict[str, list[uuid.UUID]]:
    """A merge of ``merged_id`` into ``survivor_id``: the open conflicts between the two are
    resolved (they are one person), and the merged profile's conflicts with others name the
    survivor instead. Returns the ids changed, by what changed (``resolved``, ``customer``,
    ``other``), so :func:`restore_conflicts` can undo it."""
    client = get_connection("default")
    statements: dict[str, tuple[str, list[Any]]] = {
        "resolved": (
            'UPDATE "identity_conflicts" SET "resolved_at" = $3 WHERE "resolved_at" IS NULL '
            'AND (("customer_id" = $1 AND "other_customer_id" = $2) OR ("customer_id" = $2 '
            'AND "other_customer_id" = $1)) RETURNING "id"',
            [merged_id, survivor_id, now],
        ),
        "customer": (
            'UPDATE "identity_conflicts" SET "customer_id" = $2 WHERE "customer_id" = $1 '
            'AND "other_customer_id" <> $2 RETURNING "id"',
            [merged_id, survivor_id],
        ),
        "other": (
            'UPDATE "identity_conflicts" SET "other_customer_id" = $2 WHERE '
            '"other_customer_id" = $1 AND "customer_id" <> $2 RETURNING "id"',
            [merged_id, survivor_id],
        ),
    }
    changed = {}
    for kind, (statement, arguments) in statements.items():
        rows = await client.execute_query_dict(statement, arguments)
        changed[kind] = [row["id"] for row in rows]
    return changed


async def restore_conflicts(merged_id: uuid.UUID, changed: dict[str, list[uuid.UUID]]) -> None:
    """Undo :func:`retarget_conflicts` (an unmerge): the pair's conflicts are open again and
    the others name the merged profile again."""
    await IdentityConflict.filter(id__in=changed.get("resolved", [])).update(resolved_at=None)
    await IdentityConflict.filter(id__in=changed.get("customer", [])).update(customer_id=merged_id)
    await IdentityConflict.filter(id__in=changed.get("other", [])).update(
        other_customer_id=merged_id
    )


def _ids(values: Iterable[object]) -> list[uuid.UUID]:
    return [uuid.UUID(str(v)) for v in values]


async def index_owners(blind_indexes: Iterable[str]) -> dict[str, uuid.UUID]:
    """Which customer holds each blind index (one query)."""
    wanted = list(set(blind_indexes))
    if not wanted:
        return {}
    rows = await Identity.filter(blind_index__in=wanted).values_list("blind_index", "customer_id")
    return {str(index): uuid.UUID(str(owner)) for index, owner in rows}
