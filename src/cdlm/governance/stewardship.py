"""Stewardship: an owner and a steward for every data category of the data map, and the open
data-quality issues routed to the steward of their category.

Categories are the data map's fideslang categories at the level owners are assigned
(:func:`cdlm.governance.datamap.ownership_category`). The owner is accountable for the
category (any active staff user); the steward looks after its quality and must hold a role that
can (:data:`STEWARD_ROLES`). Reassigning ends the current assignment and adds the next one: the
rows of ``data_ownership`` are each category's history.

Tasks are computed when asked, from the domains' own queries (quality's refused values,
customers' quality filter, matching's review queue): nothing is copied. Each kind of task goes
to one category by the rules :data:`TASK_CATEGORY` and :data:`REFUSED_FIELD_CATEGORY`.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from tortoise.connection import get_connection
from tortoise.expressions import Q
from tortoise.queryset import QuerySet
from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.auth import service as staff
from cdlm.core import clock
from cdlm.core.errors import ErrorCode, NotFound, ValidationFailed
from cdlm.core.principal import Principal
from cdlm.core.roles import Role
from cdlm.customers import service as customers
from cdlm.governance.datamap import ownership_categories, ownership_category
from cdlm.governance.models import DataOwnership
from cdlm.matching import service as matching
from cdlm.matching.models import MatchCandidate
from cdlm.quality import refused
from cdlm.quality.fields import PROFILE

#: Roles a steward must hold: those that work on data quality and see the values in clear.
STEWARD_ROLES = frozenset({Role.STEWARD, Role.PRIVACY_OFFICER, Role.ADMIN})


class TaskKind(StrEnum):
    """What kind of open data-quality issue a stewardship task is."""

    REFUSED_VALUE = "refused_value"
    LOW_QUALITY_PROFILE = "low_quality_profile"
    MATCH_CANDIDATE = "match_candidate"


#: Where each kind of task goes (refused values go by their field, below). A low-quality
#: profile is about the whole record (fideslang's root ``user``, as the data map files whole
#: records); a review-queue pair is a question of identity (``user.unique_id``).
TASK_CATEGORY: dict[TaskKind, str] = {
    TaskKind.LOW_QUALITY_PROFILE: "user",
    TaskKind.MATCH_CANDIDATE: "user.unique_id",
}
#: A refused value goes to the category of the profile field it was sent for.
REFUSED_FIELD_CATEGORY: dict[str, str] = {f.name: ownership_category(f.category) for f in PROFILE}


# --------------------------------------------------------------------------- ownership


@dataclass(frozen=True)
class OwnershipInput:
    """Make ``owner_id`` the owner and ``steward_id`` the steward of ``category``."""

    category: str
    owner_id: uuid.UUID
    steward_id: uuid.UUID


async def assign(actor: Principal, given: OwnershipInput) -> DataOwnership:
    """Assign (or reassign) a category's owner and steward, audited; the assignment it
    replaces is ended and kept. Assigning the same pair again changes nothing."""
    known = ownership_categories()
    if given.category not in known:
        raise ValidationFailed(
            f"Not a data category of the data map; one of: {', '.join(known)}.",
            field="input.category",
            code=ErrorCode.UNKNOWN_CODE,
        )
    roles = await staff.active_staff_roles([given.owner_id, given.steward_id])
    if given.owner_id not in roles:
        raise NotFound("No active staff user has this id.", field="input.ownerId")
    if given.steward_id not in roles:
        raise NotFound("No active staff user has this id.", field="input.stewardId")
    if roles[given.steward_id] not in STEWARD_ROLES:
        raise ValidationFailed(
            "A steward must have the steward, privacy officer or admin role.",
            field="input.stewardId",
        )
    now = clock.now()
    async with in_transaction():
        await get_connection("default").execute_query(
            "SELECT pg_advisory_xact_lock(hashtext($1))", ["data_ownership:" + given.category]
        )
        current = await DataOwnership.get_or_none(category=given.category, ended_at=None)
        if (
            current is not None
            and current.owner_id == given.owner_id
            and current.steward_id == given.steward_id
        ):
            return current
        if current is not None:
            await DataOwnership.filter(id=current.id).update(ended_at=now)
        row = await DataOwnership.create(
            id=uuid.uuid4(),
            category=given.category,
            owner_id=given.owner_id,
            steward_id=given.steward_id,
            assigned_at=now,
            assigned_by_kind=actor.kind.value,
            assigned_by_id=actor.id,
        )
        await audit.record(
            actor, "data_ownership.assign", target_type="data_category", target_id=given.category
        )
    return row


@dataclass(frozen=True)
class Ownership:
    """A category's current assignment (None: never assigned) and whether its owner is still
    an active staff user: a category is unowned without one."""

    category: str
    row: DataOwnership | None
    owner_active: bool

    @property
    def unowned(self) -> bool:
        """True when nobody (or only a deactivated staff user) owns the category."""
        return self.row is None or not self.owner_active


async def ownership_by_categories(categories: Sequence[str]) -> list[Ownership]:
    """The current ownership of ``categories``, in order (two queries)."""
    rows = await DataOwnership.filter(category__in=list(categories), ended_at__isnull=True)
    found = {row.category: row for row in rows}
    active = await staff.active_staff_roles([row.owner_id for row in rows])
    return [
        Ownership(c, found.get(c), c in found and found[c].owner_id in active) for c in categories
    ]


async def history(category: str) -> list[DataOwnership]:
    """Every assignment of ``category``, newest first."""
    return list(await DataOwnership.filter(category=category).order_by("-assigned_at", "-id"))


# ------------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class Task:
    """An open data-quality issue routed to a steward: no personal values, only references
    (the customer, the candidate pair, the source record) and coarse facts."""

    kind: TaskKind
    category: str
    opened_at: datetime
    id: uuid.UUID
    customer_id: uuid.UUID | None = None
    candidate_id: uuid.UUID | None = None
    field: str | None = None
    code: str | None = None
    source_record_id: uuid.UUID | None = None
    quality_score: float | None = None
    candidate: MatchCandidate | None = None


@dataclass(frozen=True)
class TaskQuery:
    """Which tasks of steward ``steward_id`` to list, in the order (opened at, id): the
    ``limit`` first after ``after``, or with ``backwards`` the ``limit`` last before
    ``before`` (both bounds may apply); optionally of one kind or category."""

    steward_id: uuid.UUID
    limit: int
    after: tuple[datetime, uuid.UUID] | None = None
    before: tuple[datetime, uuid.UUID] | None = None
    backwards: bool = False
    kind: TaskKind | None = None
    category: str | None = None
    quality_below: float = 0.5


@dataclass(frozen=True)
class TaskPage:
    """Tasks in order (oldest first) and whether more follow or come before."""

    tasks: list[Task]
    has_next_page: bool
    has_previous_page: bool


async def stewarded_categories(user_id: uuid.UUID) -> set[str]:
    """The categories ``user_id`` is the current steward of (one query)."""
    rows = await DataOwnership.filter(steward_id=user_id, ended_at__isnull=True).values_list(
        "category", flat=True
    )
    return {str(category) for category in rows}


def _beyond(
    query: QuerySet[Any], column: str, bound: tuple[datetime, uuid.UUID], direction: str
) -> Any:
    moment, key = bound
    beyond: dict[str, Any] = {f"{column}__{direction}": moment}
    same: dict[str, Any] = {column: moment, f"id__{direction}": key}
    return query.filter(Q(**beyond) | Q(**same))


def _page(query: QuerySet[Any], column: str, given: TaskQuery) -> Any:
    if given.after is not None:
        query = _beyond(query, column, given.after, "gt")
    if given.before is not None:
        query = _beyond(query, column, given.before, "lt")
    order = (f"-{column}", "-id") if given.backwards else (column, "id")
    return query.order_by(*order).limit(given.limit + 1)


def _wanted(kind: TaskKind, category: str, given: TaskQuery, mine: set[str]) -> bool:
    return category in mine and given.kind in (None, kind) and given.category in (None, category)


async def tasks(given: TaskQuery) -> TaskPage:
    """The steward's open tasks, oldest first: at most one query per kind of task (after the
    one that finds the steward's categories), each through its domain's own query."""
    if given.category is not None and given.category not in ownership_categories():
        raise ValidationFailed(
            "Not a data category of the data map.",
            field="filter.category",
            code=ErrorCode.UNKNOWN_CODE,
        )
    mine = await stewarded_categories(given.steward_id)
    found: list[Task] = []
    fields = [
        name
        for name, category in REFUSED_FIELD_CATEGORY.items()
        if _wanted(TaskKind.REFUSED_VALUE, category, given, mine)
    ]
    if fields:
        for row in await _page(refused.open_refused(fields), "created_at", given):
            found.append(
                Task(
                    TaskKind.REFUSED_VALUE,
                    REFUSED_FIELD_CATEGORY[row.field],
                    row.created_at,
                    row.id,
                    customer_id=row.customer_id,
                    field=row.field,
                    code=row.code,
                    source_record_id=row.source_record_id,
                )
            )
    low = TASK_CATEGORY[TaskKind.LOW_QUALITY_PROFILE]
    if _wanted(TaskKind.LOW_QUALITY_PROFILE, low, given, mine):
        criteria = customers.CustomerFilter(quality_below=given.quality_below)
        for row in await _page(customers.customers(criteria), "updated_at", given):
            found.append(
                Task(
                    TaskKind.LOW_QUALITY_PROFILE,
                    low,
                    row.updated_at,
                    row.id,
                    customer_id=row.id,
                    quality_score=row.quality_score,
                )
            )
    pairs = TASK_CATEGORY[TaskKind.MATCH_CANDIDATE]
    if _wanted(TaskKind.MATCH_CANDIDATE, pairs, given, mine):
        queue = matching.candidates(matching.CandidateFilter())
        for row in await _page(queue, "found_at", given):
            found.append(
                Task(
                    TaskKind.MATCH_CANDIDATE,
                    pairs,
                    row.found_at,
                    row.id,
                    candidate_id=row.id,
                    candidate=row,
                )
            )
    found.sort(key=lambda task: (task.opened_at, task.id), reverse=given.backwards)
    more = len(found) > given.limit
    page = found[: given.limit]
    if given.backwards:
        page.reverse()
        return TaskPage(page, has_next_page=given.before is not None, has_previous_page=more)
    return TaskPage(page, has_next_page=more, has_previous_page=given.after is not None)
