"""Reading customers for a request: one statement, decrypted in memory, plain values out.

:func:`read` loads the customers asked for (a merged profile's id gives its survivor) with every
part the request selected — the profile, identities, the latest consent decisions with the
purposes they answer, and pages of events — as one SQL statement: each part is an array of the
table's own row type, aggregated per customer, which asyncpg decodes into typed records. The
customer's wrapped data key comes in the same row, so decryption needs no second round trip.
Consent answers are computed by :func:`cdlm.consent.service.answers_from`, the one check.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any

from tortoise.connection import get_connection

from cdlm.consent.models import Decision, Purpose
from cdlm.consent.service import Decided, answers_from
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.vocabulary import LifecycleStage
from cdlm.customer360.values import (
    CustomerRecord,
    EventValue,
    EventWindow,
    IdentityValue,
    Parts,
    Profile360,
)
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import Vault

_IDENTITIES = (
    "ARRAY(SELECT i FROM identities i WHERE i.customer_id = c.id "
    "ORDER BY i.kind, i.created_at) AS __identities"
)
_CONSENTS = (
    "ARRAY(SELECT DISTINCT ON (e.purpose_id) "
    "ROW(e.purpose_id, e.decision, e.notice_version, e.decided_at) FROM consent_entries e "
    "WHERE e.customer_id = c.id ORDER BY e.purpose_id, e.sequence DESC) AS __consents"
)
# The purposes are the same for every customer: sent once, with the first row.
_PURPOSES = (
    "CASE WHEN row_number() OVER () = 1 "
    "THEN ARRAY(SELECT p FROM purposes p ORDER BY p.code) END AS __purposes"
)


def _events_column(position: int, window: EventWindow, values: list[Any]) -> str:
    conditions = ["e.customer_id = c.id"]
    if window.type is not None:
        values.append(window.type)
        conditions.append(f"e.type = ${len(values)}")
    if window.occurred_from is not None:
        values.append(window.occurred_from)
        conditions.append(f"e.occurred_at >= ${len(values)}")
    if window.occurred_to is not None:
        values.append(window.occurred_to)
        conditions.append(f"e.occurred_at < ${len(values)}")
    if window.after is not None:
        values.extend(window.after)
        conditions.append(f"(e.occurred_at, e.id) < (${len(values) - 1}, ${len(values)})")
    if window.before is not None:
        values.extend(window.before)
        conditions.append(f"(e.occurred_at, e.id) > (${len(values) - 1}, ${len(values)})")
    values.append(window.first + 1)
    # Only fixed column conditions are joined in; every value is a bind parameter.
    where = " AND ".join(conditions)
    direction = "ASC" if window.backwards else "DESC"
    return (
        f"ARRAY(SELECT e FROM events e WHERE {where} "  # noqa: S608
        f"ORDER BY e.occurred_at {direction}, e.id {direction} LIMIT ${len(values)}) "
        f"AS __events_{position}"
    )


def statement(
    ids: Sequence[uuid.UUID], parts: Parts, *, follow_merges: bool = True
) -> tuple[str, list[Any], list[EventWindow]]:
    """The SQL, its values and the order of its event columns (only fixed column expressions
    are joined in; every value is a bind parameter)."""
    values: list[Any] = [list(dict.fromkeys(ids))]
    columns = ["c.*", "a.asked", "k.wrapped_key AS __wrapped_key"]
    if parts.identities:
        columns.append(_IDENTITIES)
    if parts.consents:
        columns += [_CONSENTS, _PURPOSES]
    windows = sorted(parts.events, key=repr)
    columns += [_events_column(n, w, values) for n, w in enumerate(windows)]
    target = "coalesce(x.merged_into_id, x.id)" if follow_merges else "x.id"
    sql = (
        f"SELECT {', '.join(columns)} FROM ("  # noqa: S608
        f"SELECT {target} AS id, array_agg(x.id) AS asked "
        "FROM customers x WHERE x.id = ANY($1::uuid[]) AND x.erased_at IS NULL "
        f"GROUP BY {target}) a "
        "JOIN customers c ON c.id = a.id AND c.erased_at IS NULL "
        "LEFT JOIN customer_keys k ON k.customer_id = c.id"
    )
    return sql, values, windows


def _record(row: Any) -> CustomerRecord:
    return CustomerRecord(
        id=row["id"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        lifecycle_stage=LifecycleStage(row["lifecycle_stage"]),
        source_systems=_json(row["source_systems"]),
        last_activity_at=row["last_activity_at"],
        restricted_at=row["restricted_at"],
        erased_at=row["erased_at"],
        lineage_json=row["lineage"],
        completeness=row["completeness"],
        validity=row["validity"],
        quality_score=row["quality_score"],
    )


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def read(
    vault: Vault, ids: Sequence[uuid.UUID], parts: Parts, *, follow_merges: bool = True
) -> dict[uuid.UUID, Profile360]:
    """The customers ``ids`` with the ``parts`` asked for, keyed by the id asked (a merged
    profile's id gives its survivor unless ``follow_merges`` is off; unknown and erased
    customers are absent). One statement, plus one only when a data key is kept under another
    profile's."""
    if not ids:
        return {}
    sql, values, windows = statement(ids, parts, follow_merges=follow_merges)
    rows = await get_connection("default").execute_query_dict(sql, values)
    keys = await vault.keys_of_rows({row["id"]: row["__wrapped_key"] for row in rows})
    purposes: list[Purpose] = []
    if parts.consents and rows:
        purposes = [Purpose._init_from_db(**dict(p)) for p in rows[0]["__purposes"] or ()]
    found: dict[uuid.UUID, Profile360] = {}
    for row in rows:
        one = _profile360(vault, row, keys.get(row["id"]), parts, windows, purposes)
        for asked in row["asked"]:
            found[asked] = one
    return found


def _profile360(
    vault: Vault,
    row: Any,
    key: bytes | None,
    parts: Parts,
    windows: list[EventWindow],
    purposes: list[Purpose],
) -> Profile360:
    customer = _record(row)
    owner = customer.id
    profile = None
    if parts.profile:
        profile = vault.open(key, owner, sealed_for.PROFILE, row["profile_sealed"]) if key else {}
    identities = None
    if parts.identities:
        identities = [
            IdentityValue(
                kind=IdentifierKind(i["kind"]),
                namespace=i["namespace"],
                value=vault.open(key, owner, sealed_for.IDENTITY, i["value_sealed"])
                if key
                else None,
                created_at=i["created_at"],
            )
            for i in row["__identities"]
        ]
    consents = None
    if parts.consents:
        latest = {(owner, e[0]): Decided(Decision(e[1]), e[2], e[3]) for e in row["__consents"]}
        consents = answers_from([owner], purposes, latest, _processable(customer))[owner]
    events = {
        window: [_event(vault, key, owner, e) for e in row[f"__events_{n}"]]
        for n, window in enumerate(windows)
    }
    return Profile360(customer, key is not None, profile, identities, consents, events)


def _processable(customer: CustomerRecord) -> set[uuid.UUID]:
    return {customer.id} if customer.processable else set()


def _event(vault: Vault, key: bytes | None, owner: uuid.UUID, e: Any) -> EventValue:
    sealed = e["properties_sealed"]
    return EventValue(
        id=e["id"],
        type=e["type"],
        channel=e["channel"],
        occurred_at=e["occurred_at"],
        received_at=e["received_at"],
        amount=e["amount"],
        currency=e["currency"],
        source_system=e["source_system"],
        external_id=e["external_id"],
        item_id=e["item_id"],
        properties=(
            vault.open(key, owner, sealed_for.EVENT_PROPERTIES, sealed)
            if sealed is not None and key is not None
            else None
        ),
        sentiment=e["sentiment"],
        nps=e["nps"],
        csat=e["csat"],
    )


_EVENTS_BY_ID = (
    "SELECT e.*, c.restricted_at FROM events e JOIN customers c ON c.id = e.customer_id "
    "WHERE e.id = ANY($1::uuid[]) AND c.erased_at IS NULL"
)


async def events(
    vault: Vault, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[uuid.UUID, EventValue]]:
    """The events ``ids`` (of customers not erased) with their owners, properties decrypted;
    unknown ids are absent. One statement, and one for the data keys not cached."""
    if not ids:
        return {}
    rows = await get_connection("default").execute_query_dict(_EVENTS_BY_ID, [list(ids)])
    keys = await vault.customer_keys({row["customer_id"] for row in rows})
    return {
        row["id"]: (
            row["customer_id"],
            _event(vault, keys.get(row["customer_id"]), row["customer_id"], row),
        )
        for row in rows
    }
