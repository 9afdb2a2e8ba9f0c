"""The categories of data a retention policy can govern, what each supports, and how the
sweep finds and disposes of their rows (through each domain's disposal functions).

``events`` covers every event type without a policy of its own; ``events.<type>`` one type.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from cdlm.customers import disposal as customer_data
from cdlm.customers import rights
from cdlm.disposal import Candidate
from cdlm.dsr import disposal as request_data
from cdlm.idempotency import service as idempotency
from cdlm.ratelimit import service as ratelimit
from cdlm.retention import customer_disposal as whole_customers
from cdlm.retention.models import Action, Trigger
from cdlm.vault.service import Vault

EVENT_TYPE = re.compile(r"events\.([a-z][a-z0-9_.-]{0,56})")
#: An event type a policy or hold can name on its own (``events.<type>`` fits 64 characters).
EVENT_TYPE_NAME = re.compile(r"[a-z][a-z0-9_.-]{0,56}")
_COLLECTION = frozenset({Trigger.SINCE_COLLECTION})


class Category(StrEnum):
    """The categories of data retention governs (``events`` also per event type)."""

    EVENTS = "events"
    SOURCE_RECORDS = "source_records"
    CUSTOMERS_INACTIVE = "customers.inactive"
    DSR_EXPORTS = "dsr.exports"
    DSR_VERIFICATION_CODES = "dsr.verification_codes"
    DSR_REQUESTS = "dsr.requests"
    NOTIFICATIONS = "notifications"
    IDEMPOTENCY_RECORDS = "idempotency_records"
    RATE_LIMIT_COUNTERS = "rate_limit_counters"


@dataclass(frozen=True)
class CategorySpec:
    """What a category holds and what a policy on it may say."""

    description: str
    triggers: frozenset[Trigger]
    actions: frozenset[Action]
    data_categories: tuple[str, ...]  # fideslang keys of the personal data in it


SPECS: dict[str, CategorySpec] = {
    "events": CategorySpec(
        "Interaction events (every type without a policy of its own).",
        _COLLECTION,
        frozenset({Action.DELETE, Action.ANONYMIZE, Action.ARCHIVE}),
        ("user.behavior", "user.content.private"),
    ),
    "source_records": CategorySpec(
        "What each source sent about a customer, as received.",
        _COLLECTION,
        frozenset({Action.DELETE, Action.ARCHIVE}),
        ("user.name", "user.contact", "user.demographic.date_of_birth", "user.unique_id"),
    ),
    "customers.inactive": CategorySpec(
        "Customers with no activity and no update.",
        frozenset({Trigger.SINCE_LAST_ACTIVITY}),
        frozenset({Action.DELETE, Action.ANONYMIZE, Action.CRYPTO_SHRED}),
        ("user.name", "user.contact", "user.demographic.date_of_birth", "user.unique_id"),
    ),
    "dsr.exports": CategorySpec(
        "Copies of data made for access and portability requests.",
        _COLLECTION,
        frozenset({Action.DELETE}),
        ("user",),
    ),
    "dsr.verification_codes": CategorySpec(
        "Verification codes of data subject requests (hashes).",
        _COLLECTION,
        frozenset({Action.DELETE}),
        (),
    ),
    "dsr.requests": CategorySpec(
        "Closed data subject requests: crypto-shred destroys the requester's details and "
        "keeps the record; delete removes the request and its timeline.",
        frozenset({Trigger.SINCE_REQUEST_COMPLETION}),
        frozenset({Action.CRYPTO_SHRED, Action.DELETE}),
        ("user.contact.email", "user.contact.phone_number"),
    ),
    "notifications": CategorySpec(
        "Records of messages sent to requesters (their content is emptied once sent).",
        _COLLECTION,
        frozenset({Action.DELETE}),
        (),
    ),
    "idempotency_records": CategorySpec(
        "Results remembered for idempotency keys (ids and outcomes).",
        _COLLECTION,
        frozenset({Action.DELETE}),
        (),
    ),
    "rate_limit_counters": CategorySpec(
        "Attempt counters of rate limits (keyed digests).",
        _COLLECTION,
        frozenset({Action.DELETE}),
        (),
    ),
}


if set(SPECS) != {c.value for c in Category}:
    raise RuntimeError("every retention category has a spec, and every spec a category")


def category_key(category: Category, event_type: str | None = None) -> str:
    """The stored category: ``events.<type>`` for one event type, else the category's own."""
    return f"{category.value}.{event_type}" if event_type is not None else category.value


def split_key(key: str) -> tuple[Category, str | None]:
    """The category and event type (None: the whole category) of a stored category."""
    match = EVENT_TYPE.fullmatch(key)
    if match is not None:
        return Category.EVENTS, match.group(1)
    return Category(key), None


def event_type_problem(category: Category | None, event_type: str | None) -> str | None:
    """Why ``event_type`` cannot go with ``category``; None when it can (or is not given)."""
    if event_type is None:
        return None
    if category is not Category.EVENTS:
        return "Only the EVENTS category is narrowed to one event type."
    if not EVENT_TYPE_NAME.fullmatch(event_type):
        return (
            "An event type is 1 to 57 lower-case letters, digits, '_', '.' or '-', starting "
            "with a letter."
        )
    return None


def spec_for(category: str) -> CategorySpec | None:
    """The spec of ``category`` (``events.<type>`` shares that of ``events``)."""
    if EVENT_TYPE.fullmatch(category):
        return SPECS["events"]
    return SPECS.get(category)


Due = Callable[[datetime, Action, str | None, int], Awaitable[list[Candidate]]]
Records = Callable[[Vault, list[str]], Awaitable[list[tuple[uuid.UUID, dict[str, Any]]]]]
Dispose = Callable[[Vault, Action, list[str], rights.Keep], Awaitable[int]]


Confirm = Callable[[list[Candidate], datetime], Awaitable[list[Candidate]]]


@dataclass(frozen=True)
class Handler:
    """How the sweep finds and disposes of one category's rows."""

    due: Due
    dispose: Dispose
    records: Records | None = None  # for archiving
    confirm: Confirm | None = None  # locks the rows and returns those still due


def _deleting(delete: Callable[[list[str]], Awaitable[int]]) -> Dispose:
    async def dispose(vault: Vault, action: Action, ids: list[str], keep: rights.Keep) -> int:
        return await delete(ids)

    return dispose


def _simple(due: Callable[[datetime, str | None, int], Awaitable[list[Candidate]]]) -> Due:
    async def found(cutoff: datetime, action: Action, after: str | None, limit: int) -> Any:
        return await due(cutoff, after, limit)

    return found


def _events(event_type: str | None, excluded: frozenset[str]) -> Handler:
    async def due(cutoff: datetime, action: Action, after: str | None, limit: int) -> Any:
        return await customer_data.events_due(
            cutoff,
            after,
            limit,
            event_type=event_type,
            excluded_types=excluded,
            with_properties_only=action is Action.ANONYMIZE,
        )

    async def dispose(vault: Vault, action: Action, ids: list[str], keep: rights.Keep) -> int:
        if action is Action.ANONYMIZE:
            return await customer_data.anonymize_events(ids)
        return await customer_data.delete_events(ids)

    return Handler(due, dispose, customer_data.event_records)


async def _dispose_customers(
    vault: Vault, action: Action, ids: list[str], keep: rights.Keep
) -> int:
    if action is Action.ANONYMIZE:
        return await whole_customers.anonymize_customers(vault, ids, keep)
    if action is Action.CRYPTO_SHRED:
        return await whole_customers.crypto_shred_customers(vault, ids, keep)
    return await whole_customers.delete_customers(vault, ids, keep)


async def _confirm_customers(rows: list[Candidate], cutoff: datetime) -> list[Candidate]:
    """Lock the customers, and keep those still inactive and with no open request (an
    ingest or a request may have arrived since they were found)."""
    still = set(await customer_data.lock_inactive([r.id for r in rows], cutoff))
    busy = await request_data.customers_with_open_requests([uuid.UUID(i) for i in still])
    return [r for r in rows if r.id in still and uuid.UUID(r.id) not in busy]


async def _requests_due(cutoff: datetime, action: Action, after: str | None, limit: int) -> Any:
    return await request_data.closed_requests_due(
        cutoff, after, limit, with_details_only=action is Action.CRYPTO_SHRED
    )


async def _dispose_requests(vault: Vault, action: Action, ids: list[str], keep: rights.Keep) -> int:
    if action is Action.CRYPTO_SHRED:
        return await request_data.shred_requesters(vault, ids)
    return await request_data.delete_requests(vault, ids)


def handler_for(category: str, own_event_policies: frozenset[str] = frozenset()) -> Handler:
    """The handler of ``category``; the generic ``events`` one leaves out the event types
    that have a policy of their own (``own_event_policies``: their type names)."""
    match = EVENT_TYPE.fullmatch(category)
    if match is not None:
        return _events(match.group(1), frozenset())
    if category == "events":
        return _events(None, own_event_policies)
    if category == "source_records":
        return Handler(
            _simple(customer_data.source_records_due),
            _deleting(customer_data.delete_source_records),
            customer_data.source_record_records,
        )
    if category == "customers.inactive":
        return Handler(
            _simple(customer_data.inactive_customers_due),
            _dispose_customers,
            confirm=_confirm_customers,
        )
    if category == "dsr.requests":
        return Handler(_requests_due, _dispose_requests)
    simple: dict[str, tuple[Any, Callable[[list[str]], Awaitable[int]]]] = {
        "dsr.exports": (request_data.exports_due, request_data.delete_exports),
        "dsr.verification_codes": (request_data.codes_due, request_data.delete_codes),
        "notifications": (request_data.notifications_due, request_data.delete_notifications),
        "idempotency_records": (idempotency.records_due, idempotency.delete_records),
        "rate_limit_counters": (ratelimit.counters_due, ratelimit.delete_counters),
    }
    due, delete = simple[category]
    return Handler(_simple(due), _deleting(delete))
