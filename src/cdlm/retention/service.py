"""Placing and releasing legal holds (see :mod:`cdlm.holds`): on one customer, or on a
retention category for everyone (any category a policy can govern, e.g. ``events.purchase``
or ``source_records``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.core import clock
from cdlm.core.errors import (
    ErrorCode,
    FieldIssue,
    InvalidStateTransition,
    NotFound,
    ValidationFailed,
)
from cdlm.core.principal import Principal
from cdlm.core.text import text_problem
from cdlm.customers import service as customers
from cdlm.holds.models import LegalHold
from cdlm.retention.categories import SPECS, spec_for

MAX_REASON = 500


async def place_hold(
    actor: Principal,
    *,
    reason: str,
    customer_id: uuid.UUID | None = None,
    category: str | None = None,
    ends_at: datetime | None = None,
) -> LegalHold:
    """Hold one customer's data or a category of everyone's."""
    issues: list[FieldIssue] = []
    if (customer_id is None) == (category is None):
        issues.append(
            FieldIssue("input", ErrorCode.REQUIRED, "Hold either a customer or a category.")
        )
    if category is not None and spec_for(category) is None:
        known = ", ".join([*SPECS, "events.<type>"])
        issues.append(
            FieldIssue("input.category", ErrorCode.INVALID_FORMAT, f"Categories are: {known}.")
        )
    text = reason.strip()
    if not text:
        issues.append(FieldIssue("input.reason", ErrorCode.REQUIRED, "Give the reason."))
    elif text_problem(text) or len(text) > MAX_REASON:
        issues.append(
            FieldIssue("input.reason", ErrorCode.INVALID_FORMAT, "At most 500 characters of text.")
        )
    now = clock.now()
    if ends_at is not None and (ends_at.tzinfo is None or ends_at <= now):
        issues.append(
            FieldIssue("input.endsAt", ErrorCode.IMPLAUSIBLE, "Give a future time with a zone.")
        )
    if issues:
        raise ValidationFailed.from_issues(issues)
    async with in_transaction():
        if customer_id is not None:  # a merged id's hold goes to its survivor
            customer_id = await customers.lock_live(customer_id)
        hold = await LegalHold.create(
            id=uuid.uuid4(),
            customer_id=customer_id,
            category=category,
            reason=text,
            placed_at=now,
            placed_by_kind=actor.kind.value,
            placed_by_id=actor.id,
            ends_at=ends_at,
        )
        await audit.record(actor, "retention.hold", target_type="legal_hold", target_id=hold.id)
    return hold


async def release_hold(actor: Principal, hold_id: uuid.UUID) -> LegalHold:
    """End a hold now."""
    async with in_transaction():
        hold = await LegalHold.filter(id=hold_id).select_for_update().first()
        if hold is None:
            raise NotFound("No legal hold has this id.", field="input.id")
        now = clock.now()
        if hold.released_at is not None or (hold.ends_at is not None and hold.ends_at <= now):
            raise InvalidStateTransition("The hold has already ended.", field="input.id")
        hold.released_at = now
        hold.released_by_id = actor.id
        await hold.save(update_fields=["released_at", "released_by_id"])
        await audit.record(actor, "retention.release", target_type="legal_hold", target_id=hold.id)
    return hold
