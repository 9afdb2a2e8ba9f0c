"""Time buckets of the dashboard: days, ISO weeks (Monday to Monday) and calendar months, in UTC.

A dashboard covers the half-open period ``[start, end)``. Its buckets are those of the
interval that overlap the period: the first starts at ``start`` truncated to the interval (the
day's midnight, the week's Monday, the month's first day), the last is the one holding the
moment just before ``end``. Each bucket counts only what falls inside both the bucket and the
period, so the first and last may be partial when the bounds are not on bucket boundaries.
The SQL side (:mod:`cdlm.insight.sql`) builds the same buckets with ``date_trunc`` and
``generate_series``; :func:`starts` is the same rule in Python, used to refuse a dashboard of
more than :data:`MAX_POINTS` points before any query runs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final

from cdlm.dsr.deadlines import add_months

#: Most points a dashboard series may have.
MAX_POINTS: Final = 1000


class Interval(StrEnum):
    """The width of a dashboard bucket; the value is PostgreSQL's ``date_trunc`` unit."""

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
    """The start of the bucket after the one starting at ``start``."""
    if interval is Interval.MONTH:
        return add_months(start, 1)
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
        current = following(current, interval)
    return found
