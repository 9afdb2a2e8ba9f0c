"""Funnels, top paths and customer journeys, computed in SQL over the events table.

**Funnel.** A customer *enters* at their first event of the first step's type in
``[start, end)``. Each next step counts the first event of its type *after* the previous
step's event (later in journey order: by time, then by event id at the same instant, so a
repeated type such as view, view needs a second, later view) and at most ``within`` after the
entry; later steps may fall after ``end``. Per step: the customers who reached it, the share
of the previous step's customers (conversion), the share of those who entered (overall) and
the median seconds from the previous step's event (``percentile_cont(0.5)``).

**Top paths.** Per customer with an event of type ``starting_with`` in ``[start, end)``, from
their first such event: the types of their events in ``[start, end)``, in journey order with
consecutive repeats collapsed, the first ``length`` of them (shorter when the customer had no
more): counted per customer, most common first, with each path's share of the customers who
started.

Both leave out customers whose processing is restricted, who were erased or merged into
another profile (as the analytics run does), and read only clear columns. A segment narrows a
funnel to its members now, as the segments service evaluates them (consent included).

**Journey.** One customer's events oldest first, a page at a time (keyset on
``(occurred_at, id)``), each with the seconds since the event before it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from cdlm.analytics.journeys import sql
from cdlm.analytics.segments import service as segments
from cdlm.core.errors import ErrorCode, FieldIssue, NotFound, ValidationFailed
from cdlm.core.principal import Principal
from cdlm.db.reads import read_connection, replica_reads

#: Most steps a funnel may have (each is one index probe per customer who entered).
MAX_STEPS: Final = 10
#: Longest ``within`` accepted (ten years of 365 days).
MAX_WITHIN: Final = timedelta(days=3650)
#: Path lengths accepted by top paths, and the default.
MIN_PATH_LENGTH: Final = 2
MAX_PATH_LENGTH: Final = 6
DEFAULT_PATH_LENGTH: Final = 3
#: Most paths one answer lists, and the default.
MAX_PATHS: Final = 50
DEFAULT_PATHS: Final = 10
#: Segment members read per call of the segments service.
MEMBERS_BATCH: Final = 10_000


# --------------------------------------------------------------------------- funnel


@dataclass(frozen=True)
class FunnelQuery:
    """A funnel: event types in order, the window from the entry, the entry range
    ``[start, end)`` (aware moments) and optionally a segment whose members alone count."""

    steps: tuple[str, ...]
    within: timedelta
    start: datetime
    end: datetime
    segment_id: uuid.UUID | None = None


@dataclass(frozen=True)
class FunnelStep:
    """One step's outcome. ``conversion`` is the share of the previous step's customers
    (None for the first step, and when nobody reached the previous one); ``overall`` the
    share of those who entered (0 when nobody did); the median is in seconds from the
    previous step's event (None for the first step and when nobody reached this one)."""

    event_type: str
    customers: int
    conversion: float | None
    overall: float
    median_seconds_from_previous: float | None


@dataclass(frozen=True)
class FunnelResult:
    """The steps in order; ``entered`` is the first step's customers."""

    steps: tuple[FunnelStep, ...]
    entered: int


def _range_issues(start: datetime, end: datetime, prefix: str) -> list[FieldIssue]:
    issues = [
        FieldIssue(f"{prefix}.{name}", ErrorCode.INVALID_FORMAT, "Give a time zone.")
        for name, moment in (("from", start), ("to", end))
        if moment.tzinfo is None or moment.utcoffset() is None
    ]
    if not issues and start >= end:
        issues.append(
            FieldIssue(f"{prefix}.to", ErrorCode.VALIDATION, "`to` must be after `from`.")
        )
    return issues


def funnel_issues(query: FunnelQuery, prefix: str = "input") -> list[FieldIssue]:
    """What is wrong with ``query`` before reading anything (every problem at once)."""
    issues: list[FieldIssue] = []
    if not query.steps:
        issues.append(FieldIssue(f"{prefix}.steps", ErrorCode.REQUIRED, "Give at least one step."))
    elif len(query.steps) > MAX_STEPS:
        issues.append(
            FieldIssue(f"{prefix}.steps", ErrorCode.TOO_MANY_ITEMS, f"At most {MAX_STEPS} steps.")
        )
    if query.within <= timedelta(0):
        issues.append(
            FieldIssue(f"{prefix}.within", ErrorCode.VALIDATION, "`within` must be positive.")
        )
    elif query.within > MAX_WITHIN:
        issues.append(
            FieldIssue(
                f"{prefix}.within",
                ErrorCode.VALIDATION,
                f"`within` is at most {MAX_WITHIN.days} days.",
            )
        )
    return issues + _range_issues(query.start, query.end, prefix)


async def unknown_types(names: Sequence[str]) -> set[str]:
    """Those of ``names`` no stored event has (one probe of ``events (type, occurred_at)``
    per distinct name)."""
    wanted = sorted(set(names))
    if not wanted:
        return set()
    rows = await read_connection().execute_query_dict(sql.KNOWN_TYPES, [wanted])
    return set(wanted) - {row["type"] for row in rows}


async def _type_issues(names: Sequence[str], path: str, *, listed: bool) -> list[FieldIssue]:
    unknown = await unknown_types(names)
    return [
        FieldIssue(
            f"{path}.{position}" if listed else path,
            ErrorCode.UNKNOWN_CODE,
            "No event of this type has been stored.",
        )
        for position, name in enumerate(names)
        if name in unknown
    ]


async def _members(segment_id: uuid.UUID, path: str) -> list[uuid.UUID]:
    """Every member of the segment now, as the segments service reads them."""
    found = await segments.segment(segment_id)
    if found is None:
        raise NotFound("No segment has this id.", field=path)
    definition = segments.definition_of(found)
    ids: list[uuid.UUID] = []
    after: uuid.UUID | None = None
    while True:
        page = await segments.members(definition, segments.MembersPage(MEMBERS_BATCH, after=after))
        ids += page.ids
        if not page.has_next_page or not page.ids:
            return ids
        after = page.ids[-1]


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def funnel_steps(steps: Sequence[str], row: dict[str, Any]) -> tuple[FunnelStep, ...]:
    """The steps of a funnel from its statement's row (``n1``, ``n2``, ``m2``, ...)."""
    entered = int(row["n1"])
    found = [FunnelStep(steps[0], entered, None, 1.0 if entered else 0.0, None)]
    for position, name in enumerate(steps[1:], start=2):
        customers = int(row[f"n{position}"])
        before = found[-1].customers
        median = row[f"m{position}"]
        found.append(
            FunnelStep(
                name,
                customers,
                customers / before if before else None,
                _share(customers, entered),
                float(median) if median is not None else None,
            )
        )
    return tuple(found)


@replica_reads
async def funnel(actor: Principal, query: FunnelQuery) -> FunnelResult:
    """The funnel ``query`` asks for (see the module's note), or :class:`ValidationFailed`
    listing every problem (paths as the API's ``input``) / :class:`NotFound` for an unknown
    segment. One statement for the funnel itself."""
    issues = funnel_issues(query)
    if query.steps and len(query.steps) <= MAX_STEPS:
        issues += await _type_issues(query.steps, "input.steps", listed=True)
    if issues:
        raise ValidationFailed.from_issues(issues)
    members = None
    if query.segment_id is not None:
        members = await _members(query.segment_id, "input.segmentId")
    compiled = sql.funnel(query.steps, query.within, query.start, query.end, members)
    (row,) = await read_connection().execute_query_dict(compiled.statement, compiled.arguments)
    steps = funnel_steps(query.steps, row)
    return FunnelResult(steps, steps[0].customers)


# --------------------------------------------------------------------------- top paths


@dataclass(frozen=True)
class TopPathsQuery:
    """The most common paths from a type's first event per customer in ``[start, end)``:
    ``length`` types (the start included), the ``first`` most common."""

    starting_with: str
    start: datetime
    end: datetime
    length: int = DEFAULT_PATH_LENGTH
    first: int = DEFAULT_PATHS


@dataclass(frozen=True)
class PathCount:
    """One path (event types, the start first) and the customers who followed it; ``share``
    is of the customers who started."""

    event_types: tuple[str, ...]
    customers: int
    share: float


@dataclass(frozen=True)
class TopPaths:
    """The most common paths, most followed first; ``started`` counts every customer who
    started (their paths are all counted, listed or not)."""

    paths: tuple[PathCount, ...]
    started: int


def top_paths_issues(query: TopPathsQuery, prefix: str = "input") -> list[FieldIssue]:
    """What is wrong with ``query`` before reading anything (every problem at once)."""
    issues: list[FieldIssue] = []
    if not MIN_PATH_LENGTH <= query.length <= MAX_PATH_LENGTH:
        issues.append(
            FieldIssue(
                f"{prefix}.length",
                ErrorCode.VALIDATION,
                f"`length` is {MIN_PATH_LENGTH} to {MAX_PATH_LENGTH}.",
            )
        )
    if not 1 <= query.first <= MAX_PATHS:
        issues.append(
            FieldIssue(f"{prefix}.first", ErrorCode.VALIDATION, f"`first` is 1 to {MAX_PATHS}.")
        )
    return issues + _range_issues(query.start, query.end, prefix)


@replica_reads
async def top_paths(actor: Principal, query: TopPathsQuery) -> TopPaths:
    """The paths ``query`` asks for (see the module's note), or :class:`ValidationFailed`
    listing every problem. One statement."""
    issues = top_paths_issues(query)
    issues += await _type_issues([query.starting_with], "input.startingWith", listed=False)
    if issues:
        raise ValidationFailed.from_issues(issues)
    compiled = sql.top_paths(query.starting_with, query.length, query.start, query.end, query.first)
    rows = await read_connection().execute_query_dict(compiled.statement, compiled.arguments)
    started = int(rows[0]["total"]) if rows else 0
    return TopPaths(
        tuple(
            PathCount(tuple(row["path"]), int(row["customers"]), _share(row["customers"], started))
            for row in rows
        ),
        started,
    )


# --------------------------------------------------------------------------- journey


@dataclass(frozen=True)
class JourneyPage:
    """A page of journeys: ``size`` events after ``after`` (an event's ``(occurred_at,
    id)``), from the first event without one."""

    size: int
    after: tuple[datetime, uuid.UUID] | None = None


@dataclass(frozen=True)
class JourneyStep:
    """One event of a journey; ``seconds_from_previous`` is None for the customer's first."""

    event_id: uuid.UUID
    event_type: str
    channel: str
    occurred_at: datetime
    seconds_from_previous: float | None


@dataclass(frozen=True)
class Journey:
    """A page of one customer's journey, oldest first, and whether more events follow."""

    steps: tuple[JourneyStep, ...]
    has_next_page: bool


@replica_reads
async def journeys(
    customer_ids: Sequence[uuid.UUID], page: JourneyPage
) -> dict[uuid.UUID, Journey]:
    """The page of each customer's journey (one statement for all of them); a customer
    without events (or unknown) has an empty page."""
    ids = list(dict.fromkeys(customer_ids))
    if not ids:
        return {}
    compiled = sql.journeys(ids, page.size + 1, page.after)
    rows = await read_connection().execute_query_dict(compiled.statement, compiled.arguments)
    found: dict[uuid.UUID, list[JourneyStep]] = {i: [] for i in ids}
    for row in rows:
        gap = row["gap"]
        found[row["customer_id"]].append(
            JourneyStep(
                row["id"],
                row["type"],
                row["channel"],
                row["occurred_at"],
                float(gap) if gap is not None else None,
            )
        )
    return {
        i: Journey(tuple(steps[: page.size]), len(steps) > page.size) for i, steps in found.items()
    }
