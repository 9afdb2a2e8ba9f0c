"""Legal clocks of data subject requests.

The rules are data (``RULES``), with these defaults:

- GDPR and UK GDPR (Art. 12(3)): one month from receipt, extendable once by two further months.
- CCPA/CPRA: 45 calendar days, extendable once by 45 more; receipt confirmed within 10 business
  days.
- LGPD (Art. 19): 15 days, no extension.

Whether the clock stops while the request waits on the requester (e.g. to verify their identity)
is the jurisdiction's rule too: the UK ICO and the EDPB let the GDPR month start when the
information needed to identify the requester arrives, so every paused stretch moves the due date
back by its length; the CCPA regulations (11 CCR §7021(a)) run the 45 days from receipt
"regardless of time required to verify", and LGPD's 15 days likewise run from receipt.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class Jurisdiction(StrEnum):
    """The law a request is handled under."""

    GDPR = "gdpr"
    UK_GDPR = "uk_gdpr"
    CCPA = "ccpa"
    LGPD = "lgpd"


@dataclass(frozen=True)
class ClockRule:
    """How long a jurisdiction allows, and how far it may be extended."""

    months: int = 0
    days: int = 0
    extension_months: int = 0
    extension_days: int = 0
    acknowledge_business_days: int | None = None
    pause_while_waiting: bool = True

    @property
    def extendable(self) -> bool:
        return bool(self.extension_months or self.extension_days)

    def to_json(self) -> dict[str, Any]:
        """The rule as stored with a request (a later change of rules moves no deadline)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClockRule:
        return cls(**data)


RULES: dict[Jurisdiction, ClockRule] = {
    Jurisdiction.GDPR: ClockRule(months=1, extension_months=2),
    Jurisdiction.UK_GDPR: ClockRule(months=1, extension_months=2),
    Jurisdiction.CCPA: ClockRule(
        days=45, extension_days=45, acknowledge_business_days=10, pause_while_waiting=False
    ),
    Jurisdiction.LGPD: ClockRule(days=15, pause_while_waiting=False),
}


_PERIOD = r"(\d{1,3})([dm])"
_RULE = re.compile(rf"{_PERIOD}(?:\+{_PERIOD})?")


def parse_rules(raw: str) -> dict[Jurisdiction, ClockRule]:
    """Overrides such as ``gdpr=1m+2m,ccpa=45d+45d,lgpd=15d`` (d: days, m: months; the part
    after ``+`` is the one extension, ``+0d`` none). A clock of nothing (``0d``) would make
    every request late the moment it arrives: refused. Raises ``ValueError`` with a readable
    reason."""
    rules: dict[Jurisdiction, ClockRule] = {}
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, spec = part.partition("=")
        try:
            jurisdiction = Jurisdiction(name.strip().lower())
        except ValueError:
            known = ", ".join(j.value for j in Jurisdiction)
            raise ValueError(f"{name.strip()!r} is not a jurisdiction ({known})") from None
        match = _RULE.fullmatch(spec.strip())
        if match is None:
            raise ValueError(f"{part!r} is not like gdpr=1m+2m or lgpd=15d")
        amount, unit, extra, extra_unit = match.groups()
        if int(amount) == 0:
            raise ValueError(f"{part!r} gives no time to answer (at least 1d or 1m)")
        base = RULES[jurisdiction]
        rules[jurisdiction] = ClockRule(
            months=int(amount) if unit == "m" else 0,
            days=int(amount) if unit == "d" else 0,
            extension_months=int(extra) if extra_unit == "m" else 0,
            extension_days=int(extra) if extra_unit == "d" else 0,
            acknowledge_business_days=base.acknowledge_business_days,
            pause_while_waiting=base.pause_while_waiting,
        )
    return rules


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
