"""Time buckets of reports: UTC days, ISO weeks (Monday to Monday) and calendar months.

A report covers the half-open period ``[start, end)``. Its buckets are those of the interval
that overlap the period: the first starts at ``start`` truncated to the interval (the day's
midnight, the week's Monday, the month's first day), the last is the one holding the moment
just before ``end``. SQL builds the same buckets with ``date_trunc(unit, ...)`` (the
interval's value is the unit); :func:`count` is the same rule in Python, used by :func:`check`
to refuse a period of more than :data:`MAX_POINTS` buckets before any query runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from cdlm.core import clock
from cdlm.core.errors import ErrorCode, FieldIssue, ValidationFailed

#: Most buckets one report may have.
MAX_POINTS: Final = 1000


class Interval(StrEnum):
    """The width of a bucket; the value is PostgreSQL's ``date_trunc`` unit."""

    DAY = "day"
    WEEK = "week"
    MONTH = "month"

    @property
    def step(self) -> str:
        """The bucket's width as a PostgreSQL interval."""
        return f"1 {self.value}"


def truncate(moment: datetime, interval: Interval) -> datetime:
    """The start of the bucket holding ``moment`` (UTC)."""
    day = moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if interval is Interval.WEEK:
        return day - timedelta(days=day.weekday())
    if interval is Interval.MONTH:
        return day.replace(day=1)
    return day


def following(start: datetime, interval: Interval) -> datetime:
    """The start of the bucket after the one starting at ``start`` (a bucket start);
    :class:`OverflowError` past the year 9999."""
    if interval is Interval.MONTH:
        if start.month < 12:
            return start.replace(month=start.month + 1)
        if start.year == datetime.max.year:
            raise OverflowError("date value out of range")
        return start.replace(year=start.year + 1, month=1)
    return start + timedelta(days=7 if interval is Interval.WEEK else 1)


def count(start: datetime, end: datetime, interval: Interval) -> int:
    """How many buckets ``[start, end)`` spans (without listing them: cheap for any range)."""
    if end <= start:
        return 0
    first, last = truncate(start, interval), truncate(end - timedelta(microseconds=1), interval)
    if interval is Interval.MONTH:
        return (last.year - first.year) * 12 + last.month - first.month + 1
    return (last - first).days // (7 if interval is Interval.WEEK else 1) + 1


def starts(start: datetime, end: datetime, interval: Interval) -> list[datetime]:
    """The start of every bucket of ``[start, end)``, oldest first."""
    found: list[datetime] = []
    current = truncate(start, interval)
    while current < end:
        found.append(current)
        try:
            current = following(current, interval)
        except OverflowError:  # the bucket of the year 9999's last moments
            break
    return found


def moment_issue(moment: datetime, field: str) -> FieldIssue | None:
    """What is wrong with ``moment`` as a moment cdlm can use (:func:`cdlm.core.clock.to_utc`):
    none, or INVALID_FORMAT on ``field`` when it has no time zone (ambiguous) or is out of
    range once in UTC."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        return FieldIssue(field, ErrorCode.INVALID_FORMAT, "Give a time zone.")
    if clock.to_utc(moment) is None:
        return FieldIssue(
            field, ErrorCode.INVALID_FORMAT, "The moment is out of range once in UTC."
        )
    return None


def in_utc(moment: datetime, field: str) -> datetime:
    """``moment`` in UTC; :class:`ValidationFailed` on ``field`` as :func:`moment_issue` says."""
    issue = moment_issue(moment, field)
    if issue is not None:
        raise ValidationFailed.from_issues([issue])
    return moment.astimezone(UTC)


def check(
    start: datetime | None,
    end: datetime | None,
    interval: Interval,
    path: str = "input",
    *,
    more: Iterable[FieldIssue] = (),
) -> tuple[datetime, datetime]:
    """The period ``[start, end)`` in UTC, or :class:`ValidationFailed` listing EVERY problem
    at once (with ``more``, other problems of the same input), on camelCase paths under
    ``path``: a missing bound (REQUIRED), one without a time zone, out of range once in UTC or
    at the very first or last moment Python holds (INVALID_FORMAT) on
    ``<path>.from``/``<path>.to``; ``to`` not after ``from`` (VALIDATION,
    on ``<path>.to``); more than :data:`MAX_POINTS` buckets (TOO_MANY_ITEMS, on
    ``<path>.interval``)."""
    issues: list[FieldIssue] = []
    bounds: list[datetime] = []
    for name, moment in (("from", start), ("to", end)):
        field = f"{path}.{name}"
        issue = (
            FieldIssue(field, ErrorCode.REQUIRED, "Give both ends of the period.")
            if moment is None
            else moment_issue(moment, field)
        )
        if issue is not None:
            issues.append(issue)
        elif moment is not None:
            bounds.append(moment.astimezone(UTC))
    if len(bounds) == 2:
        first, last = bounds
        if last <= first:
            issues.append(
                FieldIssue(
                    f"{path}.to",
                    ErrorCode.VALIDATION,
                    "`to` must be after `from` (the period is [from, to)).",
                )
            )
        elif (points := count(first, last, interval)) > MAX_POINTS:
            issues.append(
                FieldIssue(
                    f"{path}.interval",
                    ErrorCode.TOO_MANY_ITEMS,
                    f"The period has {points} {interval.value}s; at most {MAX_POINTS}: choose "
                    "a wider interval or a shorter period.",
                )
            )
    issues.extend(more)
    if issues:
        raise ValidationFailed.from_issues(issues)
    first, last = bounds
    return first, last
