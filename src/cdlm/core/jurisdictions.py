"""The jurisdictions a data subject request can be handled under, and each one's legal clock.

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

Settings override the rules (``CDLM_DSR_CLOCKS``, read with :func:`parse_rules`); the request
clocks themselves are in :mod:`cdlm.dsr.deadlines`.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
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
