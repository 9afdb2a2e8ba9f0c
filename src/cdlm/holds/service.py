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

from cdlm.core import clock
from cdlm.holds.models import LegalHold
from cdlm.reassign import Table

#: Legal holds on one customer, as a merge moves them (the holds not released).
HOLDS = Table("legal_holds")
ACTIVE = '"released_at" IS NULL'


def _active(now: datetime) -> Q:
    return Q(released_at__isnull=True) & (Q(ends_at__isnull=True) | Q(ends_at__gt=now))


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
