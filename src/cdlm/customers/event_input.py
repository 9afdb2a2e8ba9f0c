"""Reading one event of an ``ingestEvents`` batch from its JSON object.

Events arrive as plain JSON objects rather than a GraphQL input type: a malformed item must
be reported on its own (with its index and field) while the valid items are stored, and a
typed input would fail the whole request at the first bad item. Reading them here is also an
order of magnitude cheaper than generic input coercion, which matters at 1,000 per call.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from cdlm.core.errors import ErrorCode, FieldIssue
from cdlm.core.identifiers import IdentifierKind
from cdlm.customers.events import EventIngest

#: The keys an event object may have (camelCase, as the rest of the API).
FIELDS = {
    "type": "Event type code, e.g. order.placed (required).",
    "occurredAt": "ISO 8601 date-time with a time zone (required).",
    "sourceSystem": "Code of the sending system, e.g. web-shop (required).",
    "channel": "Channel code, e.g. web, store, email (default unknown).",
    "customerId": "The customer's id; or give identifier.",
    "identifier": "{kind: EMAIL | PHONE | EXTERNAL_ID, value}; or give customerId.",
    "amount": "Decimal as a string or number, with currency.",
    "currency": "ISO 4217 code, with amount.",
    "properties": "Any JSON object; stored encrypted.",
    "externalId": "The source's event id: a resend is reported as a duplicate.",
}
DESCRIPTION = "An interaction, as a JSON object with these keys:\n" + "\n".join(
    f"- {name}: {text}" for name, text in FIELDS.items()
)
_KINDS = {"EMAIL": IdentifierKind.EMAIL, "PHONE": IdentifierKind.PHONE,
          "EXTERNAL_ID": IdentifierKind.EXTERNAL_ID}  # fmt: skip


def parse_event(raw: Any, position: int) -> EventIngest | list[FieldIssue]:
    """An :class:`EventIngest` from one JSON item, or the problems with it."""
    path = f"events[{position}]"
    if not isinstance(raw, dict):
        return [FieldIssue(path, ErrorCode.INVALID_FORMAT, "Each event is a JSON object.")]
    issues: list[FieldIssue] = []

    def problem(name: str, code: ErrorCode, message: str) -> None:
        issues.append(FieldIssue(f"{path}.{name}", code, message))

    for name in sorted(set(raw) - set(FIELDS)):
        problem(name, ErrorCode.INVALID_FORMAT, "Unknown field.")

    def text(name: str, *, required: bool = False) -> str | None:
        value = raw.get(name)
        if value is None:
            if required:
                problem(name, ErrorCode.REQUIRED, "Required.")
            return None
        if not isinstance(value, str):
            problem(name, ErrorCode.INVALID_FORMAT, "Must be a string.")
            return None
        return value

    kind = text("type", required=True)
    source_system = text("sourceSystem", required=True)
    channel = text("channel") or "unknown"
    currency = text("currency")
    external_id = text("externalId")
    occurred_at = None
    occurred_text = text("occurredAt", required=True)
    if occurred_text is not None:
        try:
            occurred_at = datetime.fromisoformat(occurred_text)
        except ValueError:
            problem("occurredAt", ErrorCode.INVALID_FORMAT, "Not an ISO 8601 date-time.")
    customer_id = None
    customer_text = text("customerId")
    if customer_text is not None:
        try:
            customer_id = uuid.UUID(customer_text)
        except ValueError:
            problem("customerId", ErrorCode.INVALID_FORMAT, "This is not a valid id.")
    identifier_kind = identifier_value = None
    identifier = raw.get("identifier")
    if identifier is not None:
        if (
            not isinstance(identifier, dict)
            or identifier.get("kind") not in _KINDS
            or not isinstance(identifier.get("value"), str)
        ):
            problem(
                "identifier",
                ErrorCode.INVALID_FORMAT,
                "An identifier is {kind: EMAIL | PHONE | EXTERNAL_ID, value: string}.",
            )
        else:
            identifier_kind = _KINDS[identifier["kind"]]
            identifier_value = identifier["value"]
    amount = None
    if raw.get("amount") is not None:
        value = raw["amount"]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            problem("amount", ErrorCode.INVALID_FORMAT, "A decimal number.")
        else:
            try:
                amount = Decimal(str(value))
            except InvalidOperation:
                problem("amount", ErrorCode.INVALID_FORMAT, "A decimal number.")
    properties = raw.get("properties")
    if properties is not None and not isinstance(properties, dict):
        problem("properties", ErrorCode.INVALID_FORMAT, "Properties are a JSON object.")
    if issues:
        return issues
    assert kind is not None
    assert source_system is not None
    assert occurred_at is not None
    return EventIngest(
        type=kind,
        occurred_at=occurred_at,
        source_system=source_system,
        channel=channel,
        customer_id=customer_id,
        identifier_kind=identifier_kind,
        identifier_value=identifier_value,
        amount=amount,
        currency=currency,
        properties=properties,
        external_id=external_id,
    )
