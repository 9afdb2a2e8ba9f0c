"""Interaction events: batches of up to 1,000, each addressed by customer id or identifier.

Each item is checked on its own: valid items are stored, invalid ones reported with their index,
field path and code. Typed columns (type, channel, time, amount, currency) stay in clear; the
free-form properties are sealed under the customer's data key. Feedback events also keep their
sentiment and survey answers in clear (:mod:`cdlm.customers.feedback`).
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from tortoise.connection import get_connection

from cdlm.audit import service as audit
from cdlm.config import DEFAULT_ITEM_KEYS, FEEDBACK_TYPES
from cdlm.core import clock
from cdlm.core.errors import ErrorCode, FieldIssue, ValidationFailed
from cdlm.core.identifiers import IdentifierKind, InvalidIdentifier, parse
from cdlm.core.locks import lock_names
from cdlm.core.principal import Principal
from cdlm.core.text import nesting_depth
from cdlm.customers import attributes, feedback
from cdlm.customers import service as customers
from cdlm.customers.event_items import item_id_of
from cdlm.customers.ingest import SOURCE_SYSTEM
from cdlm.idempotency import service as idempotency
from cdlm.identity import service as identity
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import Vault

MAX_BATCH = 1000
MAX_PROPERTIES_BYTES = 16_384
EVENT_TYPE = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
CHANNEL = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
FUTURE_TOLERANCE = timedelta(minutes=5)
AMOUNT_LIMIT = Decimal("1000000000000")
CENT = Decimal("0.01")
MAX_PROPERTIES_DEPTH = 32
#: Whole numbers in properties fit a signed 64-bit integer: what every JSON encoder of the
#: responses (and most clients) can carry.
PROPERTIES_INTEGER_RANGE = range(-(2**63), 2**63)
_NUMBERS = "Numbers in properties are finite, and whole numbers fit in 64 bits."
#: Moves customers' last activity forward. Rows are locked in id order (ORDER BY applies before
#: FOR NO KEY UPDATE), as every writer of customer rows does, so concurrent batches naming the
#: same customers in different orders queue up instead of deadlocking; rows already as recent
#: are neither locked nor written.
LATEST_ACTIVITY = """
WITH due AS (
    SELECT c.id, v.at FROM unnest($1::uuid[], $2::timestamptz[]) AS v(id, at)
    JOIN "customers" AS c ON c.id = v.id
    WHERE c."last_activity_at" IS NULL OR c."last_activity_at" < v.at
    ORDER BY c.id
    FOR NO KEY UPDATE OF c
)
UPDATE "customers" AS c SET "last_activity_at" = GREATEST(c."last_activity_at", due.at)
FROM due WHERE c.id = due.id
"""
EVENT_COLUMNS = [
    "id", "customer_id", "type", "channel", "occurred_at", "received_at", "amount", "currency",
    "properties_sealed", "source_system", "external_id", "sentiment", "nps", "csat", "item_id",
]  # fmt: skip


@dataclass(frozen=True)
class EventRules:
    """What ingestion reads from an event's sealed properties into clear columns."""

    #: Event types whose text is scored and whose survey answers are kept
    #: (``CDLM_FEEDBACK_EVENT_TYPES``).
    feedback_types: frozenset[str] = FEEDBACK_TYPES
    #: Property keys the item id is read from, first present wins
    #: (``CDLM_RECOMMENDATION_ITEM_KEYS``).
    item_keys: tuple[str, ...] = DEFAULT_ITEM_KEYS


@dataclass
class EventIngest:
    """One event as sent; exactly one of ``customer_id`` and ``identifier`` addresses it."""

    type: str
    occurred_at: datetime
    source_system: str
    channel: str = "unknown"
    customer_id: uuid.UUID | None = None
    identifier_kind: IdentifierKind | None = None
    identifier_value: str | None = None
    amount: Decimal | None = None
    currency: str | None = None
    properties: dict[str, Any] | None = None
    external_id: str | None = None


@dataclass
class BatchResult:
    """Per item: the stored event id, or the problems that kept it out."""

    accepted: dict[int, uuid.UUID] = field(default_factory=dict)
    duplicates: dict[int, uuid.UUID] = field(default_factory=dict)
    rejected: dict[int, list[FieldIssue]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "accepted": {str(i): str(v) for i, v in self.accepted.items()},
            "duplicates": {str(i): str(v) for i, v in self.duplicates.items()},
            "rejected": {
                str(i): [[p.field, p.code.value, p.message] for p in problems]
                for i, problems in self.rejected.items()
            },
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BatchResult:
        return cls(
            accepted={int(i): uuid.UUID(v) for i, v in data["accepted"].items()},
            duplicates={int(i): uuid.UUID(v) for i, v in data["duplicates"].items()},
            rejected={
                int(i): [FieldIssue(f, ErrorCode(c), m) for f, c, m in problems]
                for i, problems in data["rejected"].items()
            },
        )


def _currency_known(code: str) -> bool:
    import pycountry  # not needed at start-up

    return pycountry.currencies.get(alpha_3=code) is not None


def amount_problem(amount: Decimal) -> tuple[ErrorCode, str] | None:
    """Why ``amount`` cannot be stored (not finite, too large, finer than a cent), or None.

    Only context-free operations are used: arithmetic on a huge exponent (``1e1000000``)
    would raise instead of answering.
    """
    if not amount.is_finite():
        return ErrorCode.INVALID_FORMAT, "The amount must be a finite number."
    if amount.copy_abs() >= AMOUNT_LIMIT:
        return ErrorCode.IMPLAUSIBLE, "Amounts are below 1,000,000,000,000 in absolute value."
    exponent = amount.as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if exponent < -2 and amount != amount.quantize(CENT):
        return ErrorCode.INVALID_FORMAT, "Amounts have at most 2 decimals."
    return None


def _numbers_problem(value: Any) -> str | None:
    """Why a number in ``value`` (decoded JSON) could not be answered again as JSON, or None.

    Python's decoder accepts ``NaN``, ``Infinity`` and integers of any size; a response (and
    an export to the data subject) can carry none of them, so such properties are refused
    rather than stored to break every later read. Walked without recursion."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, float):
            if not math.isfinite(item):
                return _NUMBERS
        elif isinstance(item, int) and item not in PROPERTIES_INTEGER_RANGE:
            return _NUMBERS  # (a bool is an int in range)
    return None


def check_event(
    item: EventIngest, path: str, now: datetime
) -> tuple[list[FieldIssue], bytes | None]:
    """The problems with one event (each naming a field under ``path``) and its properties
    encoded for sealing. It looks at this item only, so no item can fail another."""
    issues: list[FieldIssue] = []

    def problem(name: str, code: ErrorCode, message: str) -> None:
        issues.append(FieldIssue(f"{path}.{name}", code, message))

    if (item.customer_id is None) == (item.identifier_value is None):
        problem("customerId", ErrorCode.REQUIRED, "Give either customerId or identifier.")
    if not EVENT_TYPE.fullmatch(item.type):
        problem("type", ErrorCode.INVALID_FORMAT, "Event types are codes such as order.placed.")
    if not CHANNEL.fullmatch(item.channel):
        problem("channel", ErrorCode.INVALID_FORMAT, "Channels are codes such as web or store.")
    if not SOURCE_SYSTEM.fullmatch(item.source_system):
        problem("sourceSystem", ErrorCode.INVALID_FORMAT, "Source systems are codes such as crm.")
    if item.occurred_at.tzinfo is None:
        problem("occurredAt", ErrorCode.INVALID_FORMAT, "Give a time zone.")
    elif not EARLIEST <= item.occurred_at <= now + FUTURE_TOLERANCE:
        problem("occurredAt", ErrorCode.IMPLAUSIBLE, "The time is in the future or before 1970.")
    if (item.amount is None) != (item.currency is None):
        problem("currency", ErrorCode.REQUIRED, "Give amount and currency together.")
    if item.amount is not None:
        refusal = amount_problem(item.amount)
        if refusal is not None:
            problem("amount", *refusal)
        else:
            item.amount = item.amount.quantize(CENT)
    if item.currency is not None:
        item.currency = item.currency.strip().upper()
    if item.currency is not None and not _currency_known(item.currency):
        problem("currency", ErrorCode.UNKNOWN_CODE, "Not an ISO 4217 currency.")
    if item.external_id is not None and not 0 < len(item.external_id) <= 128:
        problem("externalId", ErrorCode.TOO_LONG, "External ids have 1 to 128 characters.")
    properties: bytes | None = None
    if item.properties is not None and nesting_depth(item.properties) > MAX_PROPERTIES_DEPTH:
        problem(
            "properties",
            ErrorCode.TOO_LONG,
            f"Properties nest at most {MAX_PROPERTIES_DEPTH} levels deep.",
        )
    elif item.properties is not None and (number := _numbers_problem(item.properties)):
        problem("properties", ErrorCode.INVALID_FORMAT, number)
    elif item.properties is not None:
        properties = json.dumps(
            item.properties, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        ).encode()
        if len(properties) > MAX_PROPERTIES_BYTES:
            problem("properties", ErrorCode.TOO_LONG, "Properties are at most 16 KiB of JSON.")
    return issues, properties


async def _share_locked(customer_ids: set[uuid.UUID]) -> list[dict[str, Any]]:
    """Customers not erased, read with a lock that lets other batches in but makes a merge
    wait (or be waited for): an event never lands on a profile merged meanwhile."""
    if not customer_ids:
        return []
    return await get_connection("default").execute_query_dict(
        'SELECT "id", "restricted_at", "merged_into_id" FROM "customers" '
        'WHERE "id" = ANY($1::uuid[]) AND "erased_at" IS NULL ORDER BY "id" FOR KEY SHARE',
        [sorted(customer_ids)],
    )


async def _customers_for(
    vault: Vault, items: list[EventIngest], result: BatchResult, prefix: str
) -> dict[int, uuid.UUID]:
    """Which customer each item belongs to (two queries for the whole batch: identifiers,
    then the customers with their restriction)."""
    parsed: dict[int, Any] = {}
    for position, item in enumerate(items):
        if position in result.rejected or item.identifier_value is None:
            continue
        assert item.identifier_kind is not None
        try:
            parsed[position] = parse(item.identifier_kind, item.identifier_value)
        except InvalidIdentifier as error:
            result.rejected[position] = [
                FieldIssue(f"{prefix}.{position}.identifier.value", error.code, error.message)
            ]
    owners = await identity.owners(vault, parsed.values()) if parsed else {}
    addressed = {item.customer_id for item in items if item.customer_id is not None}
    addressed.update(owners.values())
    # Ids of profiles merged into others send their events to the survivors: the survivors
    # are found first, then everything is locked at once, in id order (no deadlock).
    survivors = await customers.survivors(addressed)
    rows = await _share_locked(addressed | set(survivors.values()))
    redirect = {row["id"]: row["merged_into_id"] for row in rows if row["merged_into_id"]}
    rows = [r for r in rows if not r["merged_into_id"]]
    late = set(redirect.values()) - {r["id"] for r in rows}
    if late:  # merged between the two reads (rare): its survivor is locked after the others
        rows += [r for r in await _share_locked(late) if not r["merged_into_id"]]
    known = {row["id"] for row in rows}
    restricted = {row["id"] for row in rows if row["restricted_at"] is not None}
    found: dict[int, uuid.UUID] = {}
    for position, item in enumerate(items):
        if position in result.rejected:
            continue
        customer_id = owners.get(parsed[position]) if position in parsed else item.customer_id
        customer_id = redirect.get(customer_id, customer_id) if customer_id else None
        if customer_id is None or customer_id not in known:
            result.rejected[position] = [
                FieldIssue(
                    f"{prefix}.{position}",
                    ErrorCode.NOT_FOUND,
                    "No customer has this id or identifier.",
                )
            ]
        elif customer_id in restricted:
            result.rejected[position] = [
                FieldIssue(
                    f"{prefix}.{position}",
                    ErrorCode.PROCESSING_RESTRICTED,
                    "Processing of this customer is restricted (GDPR Art. 18): the event is "
                    "not stored.",
                )
            ]
        else:
            found[position] = customer_id
    return found


async def _existing_external_ids(items: list[EventIngest]) -> dict[tuple[str, str], uuid.UUID]:
    pairs = {(i.source_system, i.external_id) for i in items if i.external_id is not None}
    if not pairs:
        return {}
    rows = await get_connection("default").execute_query_dict(
        # The keys of events, one table across every month (see EventKey).
        'SELECT "event_id" AS "id", "source_system", "external_id" FROM "event_keys" '
        'WHERE ("source_system", "external_id") IN '
        "(SELECT * FROM unnest($1::text[], $2::text[]))",
        [[p[0] for p in pairs], [p[1] for p in pairs]],
    )
    return {(row["source_system"], row["external_id"]): row["id"] for row in rows}


def _feedback_scores(
    items: list[EventIngest], refused: set[int], types: frozenset[str]
) -> dict[int, feedback.FeedbackScores | list[feedback.AnswerProblem]]:
    """The clear scores of the feedback events not in ``refused``, or what is wrong with
    their survey answers (VADER's work: run off the event loop)."""
    return {
        position: feedback.score(item.properties)
        for position, item in enumerate(items)
        if item.type in types and position not in refused
    }


async def _scored_feedback(
    items: list[EventIngest], result: BatchResult, prefix: str, types: frozenset[str]
) -> dict[int, feedback.FeedbackScores]:
    """The clear scores of the feedback events not refused yet; malformed survey answers
    refuse their event (on its properties: the answers are inside them). Texts are scored in
    a thread, so that a batch of them does not hold up the other requests."""
    refused = set(result.rejected)
    texts = any(
        item.type in types
        and position not in refused
        and item.properties
        and feedback.text_of(item.properties) is not None
        for position, item in enumerate(items)
    )
    if texts:
        found = await asyncio.to_thread(_feedback_scores, items, refused, types)
    else:
        found = _feedback_scores(items, refused, types)
    scores: dict[int, feedback.FeedbackScores] = {}
    for position, outcome in found.items():
        if isinstance(outcome, list):
            result.rejected[position] = [
                FieldIssue(f"{prefix}.{position}.properties", p.code, p.message) for p in outcome
            ]
        else:
            scores[position] = outcome
    return scores


async def store_events(
    vault: Vault,
    items: list[EventIngest],
    prefix: str = "events",
    rules: EventRules = EventRules(),
) -> tuple[BatchResult, list[uuid.UUID]]:
    """Validate and store a batch in the caller's transaction; returns per-item outcomes and
    the customers touched. What ``rules`` name is read from the properties into clear
    columns: feedback scores (and the customers' sentiment average kept current) and item ids
    (:mod:`cdlm.customers.feedback`, :mod:`cdlm.customers.event_items`)."""
    if len(items) > MAX_BATCH:
        raise ValidationFailed(
            f"A batch holds at most {MAX_BATCH} events.",
            field=prefix,
            code=ErrorCode.TOO_MANY_ITEMS,
        )
    now = clock.now()
    result = BatchResult()
    properties: dict[int, bytes | None] = {}
    item_ids: dict[int, str | None] = {}
    for position, item in enumerate(items):
        issues, sealed_input = check_event(item, f"{prefix}.{position}", now)
        path = f"{prefix}.{position}.properties"
        item_ids[position], item_issue = item_id_of(item.properties, rules.item_keys, path)
        issues += [item_issue] if item_issue is not None else []
        if issues:
            result.rejected[position] = issues
        properties[position] = sealed_input
    scores = await _scored_feedback(items, result, prefix, rules.feedback_types)
    await vault.ready()
    owners = await _customers_for(vault, items, result, prefix)
    keys = await vault.customer_keys(owners.values())
    # Concurrent batches resending the same events wait for each other, then see them stored;
    # batches scoring the same customer's feedback too, so each average counts the other's.
    scored = {owners[p] for p in owners if p in scores and scores[p].sentiment is not None}
    await lock_names(
        [
            *(
                f"event\x00{items[p].source_system}\x00{items[p].external_id}"
                for p in owners
                if items[p].external_id is not None
            ),
            *(f"sentiment\x00{customer_id}" for customer_id in scored),
        ]
    )
    existing = await _existing_external_ids([items[p] for p in owners])
    seen: dict[tuple[str, str], uuid.UUID] = {}
    rows: list[tuple[Any, ...]] = []
    latest: dict[uuid.UUID, datetime] = {}
    for position, customer_id in owners.items():
        item = items[position]
        key = keys.get(customer_id)
        if key is None:  # crypto-shredded between lookup and now
            result.rejected[position] = [
                FieldIssue(f"{prefix}.{position}", ErrorCode.NOT_FOUND, "No such customer.")
            ]
            continue
        if item.external_id is not None:
            pair = (item.source_system, item.external_id)
            duplicate_of = existing.get(pair) or seen.get(pair)
            if duplicate_of is not None:
                result.duplicates[position] = duplicate_of
                continue
        event_id = uuid.uuid4()
        if item.external_id is not None:
            seen[(item.source_system, item.external_id)] = event_id
        encoded = properties[position]
        sealed = (
            vault.seal_json(key, customer_id, sealed_for.EVENT_PROPERTIES, encoded)
            if encoded is not None
            else None
        )
        clear = scores.get(position) or feedback.FeedbackScores()
        rows.append(
            (
                event_id,
                customer_id,
                item.type,
                item.channel,
                item.occurred_at,
                now,
                item.amount,
                item.currency,
                sealed,
                item.source_system,
                item.external_id,
                clear.sentiment,
                clear.nps,
                clear.csat,
                item_ids[position],
            )
        )
        result.accepted[position] = event_id
        if latest.get(customer_id) is None or item.occurred_at > latest[customer_id]:
            latest[customer_id] = item.occurred_at
    if rows:
        # In customer order: the foreign key checks lock customers in the order rows go in.
        rows.sort(key=lambda row: row[1])
        client = get_connection("default")
        async with client.acquire_connection() as connection:
            # COPY: the fastest way into PostgreSQL, in the caller's transaction.
            await connection.copy_records_to_table("events", records=rows, columns=EVENT_COLUMNS)
        await client.execute_query(LATEST_ACTIVITY, [list(latest), list(latest.values())])
        await attributes.refresh_sentiment(scored & set(latest))
    return result, list(latest)


async def ingest_events(
    actor: Principal,
    vault: Vault,
    items: list[EventIngest],
    idempotency_key: str | None = None,
    request_fingerprint: str | None = None,
    prefix: str = "events",
    rules: EventRules = EventRules(),
) -> tuple[BatchResult, bool]:
    """The ``ingestEvents`` operation: idempotent per batch, one audit entry, one transaction.

    ``request_fingerprint`` identifies the request as sent (including items refused before
    they got here); without it, the items are fingerprinted. ``rules``: what is read from the
    properties into clear columns (:class:`EventRules`).
    """

    async def run() -> BatchResult:
        result, _ = await store_events(vault, items, prefix, rules)
        await audit.record(
            actor,
            "events.ingest",
            target_type="event_batch",
            target_id=uuid.uuid4(),
            fields=["properties"] if any(i.properties for i in items) else [],
        )
        return result

    request = [
        {
            "type": i.type,
            "at": i.occurred_at.isoformat(),
            "customer": str(i.customer_id) if i.customer_id else None,
            "identifier": [i.identifier_kind, i.identifier_value],
            "amount": str(i.amount) if i.amount is not None else None,
            "currency": i.currency,
            "channel": i.channel,
            "properties": i.properties,
            "source": i.source_system,
            "external_id": i.external_id,
        }
        for i in items
    ]
    outcome = await idempotency.run_once(
        vault,
        idempotency.scope_for("ingestEvents", actor),
        idempotency_key,
        request_fingerprint or idempotency.fingerprint(request),
        run,
        idempotency.Codec(BatchResult.to_json, BatchResult.from_json),
    )
    return outcome.result, outcome.replayed
