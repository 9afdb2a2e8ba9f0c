"""Legal holds: data that must be kept whatever a request or policy says.

A hold is on one customer (everything about them is kept: an erasure waits on hold, the
retention sweep skips them) or on a category for everyone (any retention category, e.g.
``events.purchase`` or ``source_records``: an erasure keeps those rows, restricted, and lists
them in its certificate; the sweep skips them and says so). A hold ends when released or at
its end date.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from tortoise.expressions import Q
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
from cdlm.reassign import Table
from cdlm.retention.categories import SPECS, spec_for
from cdlm.retention.models import LegalHold

#: Legal holds on one customer, as a merge moves them (the holds not released).
HOLDS = Table("legal_holds")
ACTIVE = '"released_at" IS NULL'


MAX_REASON = 500


def _active(now: datetime) -> Q:
    return Q(released_at__isnull=True) & (Q(ends_at__isnull=True) | Q(ends_at__gt=now))


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


async def holds_on(customer_id: uuid.UUID) -> list[LegalHold]:
    """Active holds that apply to the customer: theirs and every category hold."""
    now = clock.now()
    return list(
        await LegalHold.filter(_active(now))
        .filter(Q(customer_id=customer_id) | Q(category__isnull=False))
        .order_by("placed_at")
    )


async def held_customers(customer_ids: list[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these customers a hold in force is placed on (not category holds)."""
    rows = await LegalHold.filter(_active(clock.now()), customer_id__in=customer_ids).values_list(
        "customer_id", flat=True
    )
    return {uuid.UUID(str(c)) for c in rows}


def on_customer(holds: list[LegalHold], customer_id: uuid.UUID) -> LegalHold | None:
    """The first of ``holds`` placed on the customer themself (not on a category)."""
    return next((h for h in holds if h.customer_id == customer_id), None)


async def holds(include_ended: bool = False) -> list[LegalHold]:
    """Every hold (active ones only unless ``include_ended``), newest first."""
    query = LegalHold.all() if include_ended else LegalHold.filter(_active(clock.now()))
    return list(await query.order_by("-placed_at"))


async def is_active(hold_id: uuid.UUID) -> bool:
    """True while the hold applies."""
    return await LegalHold.filter(_active(clock.now())).filter(id=hold_id).exists()


async def active_holds() -> list[LegalHold]:
    """Every hold in force."""
    return list(await LegalHold.filter(_active(clock.now())))
