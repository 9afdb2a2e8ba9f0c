"""Legal clocks of data subject requests: when an answer is due, counting the pauses while a
request waits on the requester, and the one extension.

The rule of each jurisdiction (how long, whether it may be extended, whether waiting on the
requester stops the clock) is in :mod:`cdlm.core.jurisdictions`.
"""

from __future__ import annotations

import calendar
import math
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from cdlm.core.jurisdictions import RULES, ClockRule, Jurisdiction


def add_months(moment: datetime, months: int) -> datetime:
    """The same day ``months`` later; the month's last day when that day does not exist
    (31 January + 1 month = 28/29 February)."""
    month_index = moment.month - 1 + months
    year = moment.year + month_index // 12
    month = month_index % 12 + 1
    day = min(moment.day, calendar.monthrange(year, month)[1])
    return moment.replace(year=year, month=month, day=day)


def add_business_days(moment: datetime, days: int) -> datetime:
    """``days`` working days (Monday to Friday) after ``moment``."""
    current = moment
    remaining = days
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current


@dataclass(frozen=True)
class Pause:
    """A stretch during which the request waited on the requester."""

    started_at: datetime
    ended_at: datetime | None = None

    def length(self, now: datetime) -> timedelta:
        return (self.ended_at or now) - self.started_at


@dataclass(frozen=True)
class RequestClock:
    """Everything the due date depends on."""

    received_at: datetime
    jurisdiction: Jurisdiction
    pauses: tuple[Pause, ...] = field(default_factory=tuple)
    extended: bool = False
    custom_rule: ClockRule | None = None

    @property
    def rule(self) -> ClockRule:
        return self.custom_rule or RULES[self.jurisdiction]

    def paused(self) -> bool:
        """True while the request waits on the requester."""
        return bool(self.pauses) and self.pauses[-1].ended_at is None

    def due_at(self, now: datetime) -> datetime:
        """When the answer is due, counting pauses up to ``now`` (an open pause keeps moving
        the date)."""
        rule = self.rule
        due = add_months(self.received_at, rule.months) + timedelta(days=rule.days)
        if self.extended:
            due = add_months(due, rule.extension_months) + timedelta(days=rule.extension_days)
        waited = sum((p.length(now) for p in self.pauses), timedelta(0))
        return due + waited

    def days_left(self, now: datetime) -> int:
        """Whole days until the due date (negative once overdue)."""
        remaining = (self.due_at(now) - now).total_seconds() / 86_400
        return math.ceil(remaining) if remaining >= 0 else -math.ceil(-remaining)

    def overdue(self, now: datetime) -> bool:
        """True when the due date has passed (a paused request is never overdue)."""
        return not self.paused() and now > self.due_at(now)

    def acknowledge_by(self) -> datetime | None:
        """When receipt must be confirmed (CCPA), or None where no such duty exists."""
        days = self.rule.acknowledge_business_days
        return add_business_days(self.received_at, days) if days is not None else None

    def can_extend(self, now: datetime) -> bool:
        """An extension is possible once, before the original due date passes."""
        return self.rule.extendable and not self.extended and now <= self.due_at(now)

    def pause(self, at: datetime) -> RequestClock:
        """Stop the clock (waiting on the requester) where the rule allows it; pausing a paused
        clock, or one whose rule runs from receipt whatever happens, changes nothing."""
        if self.paused() or not self.rule.pause_while_waiting:
            return self
        return replace(self, pauses=(*self.pauses, Pause(at)))

    def resume(self, at: datetime) -> RequestClock:
        """Start the clock again; resuming a running clock changes nothing."""
        if not self.paused():
            return self
        last = self.pauses[-1]
        closed = Pause(last.started_at, max(at, last.started_at))
        return replace(self, pauses=(*self.pauses[:-1], closed))

    def extend(self) -> RequestClock:
        """The clock with its one extension applied."""
        return replace(self, extended=True)
