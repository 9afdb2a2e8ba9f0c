"""Legal holds: data that must be kept whatever a request or policy says.

A hold is on one customer (everything about them is kept: an erasure waits on hold, the
retention sweep skips them) or on a category for everyone (any retention category, e.g.
``events.purchase`` or ``source_records``: an erasure keeps those rows, restricted, and lists
them in its certificate; the sweep skips them and says so). A hold ends when released or at
its end date.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Q
from tortoise.queryset import QuerySet

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


@dataclass(frozen=True)
class HoldFilter:
    """Which holds to list: those in force (or also ended ones), optionally only those placed
    on one customer or on one category."""

    include_ended: bool = False
    customer_id: uuid.UUID | None = None
    category: str | None = None


def holds_query(criteria: HoldFilter) -> QuerySet[LegalHold]:
    """The holds meeting ``criteria``, unordered (the caller pages them)."""
    query = LegalHold.all() if criteria.include_ended else LegalHold.filter(_active(clock.now()))
    if criteria.customer_id is not None:
        query = query.filter(customer_id=criteria.customer_id)
    if criteria.category is not None:
        query = query.filter(category=criteria.category)
    return query


async def holds(include_ended: bool = False) -> list[LegalHold]:
    """Every hold (active ones only unless ``include_ended``), newest first."""
    return list(await holds_query(HoldFilter(include_ended)).order_by("-placed_at"))


async def holds_by_ids(ids: list[uuid.UUID]) -> dict[uuid.UUID, LegalHold]:
    """Holds by id, ended ones too (one query)."""
    return {h.id: h for h in await LegalHold.filter(id__in=list(set(ids)))}


def in_force(hold: LegalHold, now: datetime | None = None) -> bool:
    """True while ``hold`` applies: not released and not past its end."""
    moment = now or clock.now()
    return hold.released_at is None and (hold.ends_at is None or hold.ends_at > moment)


async def is_active(hold_id: uuid.UUID) -> bool:
    """True while the hold applies."""
    return await LegalHold.filter(_active(clock.now())).filter(id=hold_id).exists()


async def active_holds() -> list[LegalHold]:
    """Every hold in force."""
    return list(await LegalHold.filter(_active(clock.now())))
