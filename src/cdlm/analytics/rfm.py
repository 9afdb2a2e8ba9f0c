"""RFM: recency, frequency and monetary quintile scores per customer, computed over a population.

Each measure is scored 1 to 5, 5 best (most recent, most purchases, highest spend), by where the
customer's value stands among everyone scored:

    score = 1 + floor(5 * (worse + equal / 2) / n)

where ``worse`` counts customers with a strictly worse value and ``equal`` those with the same
value (the customer included). Distinct values split into exact quintiles (n = 10 gives two of
each score); equal values always get equal scores, placed at the middle of the ranks they share.
The rule depends only on the values, never on input order. One customer, or a population where
everyone is equal, scores 3.

The combined ``score`` is ``r + f + m`` (3 to 15, equal weights); ``code`` is the conventional RFM
cell ``r*100 + f*10 + m`` (555 best, 111 worst).

Amounts are summed in one reporting currency: a purchase in a currency with no configured rate
still counts for recency and frequency, but its amount is left out and counted in
:attr:`PurchaseSummary.skipped_amounts`, so a run's evidence shows it instead of failing or
guessing a rate. :meth:`ExchangeRates.convert` on its own refuses an unknown currency.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Final, Generic, TypeVar

K = TypeVar("K", bound=Hashable)

#: Same shape as stored event types (``cdlm.customers.events.EVENT_TYPE``).
EVENT_TYPE: Final = re.compile(r"^[a-z][a-z0-9_.:-]{0,63}$")
CURRENCY: Final = re.compile(r"^[A-Z]{3}$")
QUINTILES: Final = 5
ONE: Final = Decimal(1)


class RfmConfigError(ValueError):
    """A purchase rule or exchange rate is malformed."""


class UnknownCurrency(ValueError):
    """An amount is in a currency without a configured rate."""

    def __init__(self, currency: str) -> None:
        super().__init__(f"no exchange rate configured for currency {currency!r}")
        self.currency = currency


@dataclass(frozen=True)
class PurchaseRules:
    """Which event types count as purchases."""

    event_types: frozenset[str] = frozenset({"purchase"})

    def __post_init__(self) -> None:
        if not self.event_types:
            raise RfmConfigError("at least one event type must count as a purchase")
        bad = sorted(t for t in self.event_types if not EVENT_TYPE.match(t))
        if bad:
            raise RfmConfigError(f"not event types: {', '.join(repr(t) for t in bad)}")

    @classmethod
    def parse(cls, raw: str) -> PurchaseRules:
        """From comma-separated event types: ``purchase,order_completed``."""
        return cls(frozenset(part.strip() for part in raw.split(",")))

    def counts(self, event_type: str) -> bool:
        """True when events of ``event_type`` are purchases."""
        return event_type in self.event_types


@dataclass(frozen=True)
class ExchangeRates:
    """Rates to the reporting currency: ``rates[c]`` units of it per unit of currency ``c``."""

    reporting: str
    rates: Mapping[str, Decimal] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not CURRENCY.match(self.reporting):
            raise RfmConfigError(f"reporting currency {self.reporting!r} is not ISO 4217")
        rates = dict(self.rates)
        for currency, rate in rates.items():
            if not CURRENCY.match(currency):
                raise RfmConfigError(f"currency {currency!r} is not ISO 4217")
            if not isinstance(rate, Decimal) or not rate.is_finite() or rate <= 0:
                raise RfmConfigError(f"rate of {currency} must be a positive Decimal")
        if rates.setdefault(self.reporting, ONE) != ONE:
            raise RfmConfigError(f"the reporting currency {self.reporting} has rate 1")
        object.__setattr__(self, "rates", MappingProxyType(rates))

    @classmethod
    def parse(cls, reporting: str, raw: str) -> ExchangeRates:
        """From ``USD=0.92,GBP=1.17`` (empty: only the reporting currency)."""
        rates: dict[str, Decimal] = {}
        for part in filter(None, (p.strip() for p in raw.split(","))):
            currency, equals, rate = part.partition("=")
            try:
                if not equals:
                    raise ArithmeticError
                rates[currency.strip()] = Decimal(rate.strip())
            except ArithmeticError:
                raise RfmConfigError(f"{part!r} is not CURRENCY=RATE") from None
        return cls(reporting, rates)

    def convert(self, amount: Decimal, currency: str) -> Decimal:
        """``amount`` of ``currency`` in the reporting currency (exact Decimal product)."""
        rate = self.rates.get(currency)
        if rate is None:
            raise UnknownCurrency(currency)
        return amount * rate


@dataclass(frozen=True)
class Purchase(Generic[K]):
    """One event as RFM needs it."""

    customer: K
    event_type: str
    occurred_at: datetime
    amount: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True)
class RfmInput:
    """A customer's purchasing as of a day."""

    recency_days: int  #: whole days from the last purchase to the as-of moment (≥ 0)
    frequency: int  #: number of purchases (≥ 1)
    monetary: Decimal  #: total in the reporting currency


@dataclass(frozen=True)
class PurchaseSummary(Generic[K]):
    """RFM inputs per customer, and what could not be counted."""

    customers: Mapping[K, RfmInput]
    #: currency → number of purchases whose amount was left out for want of a rate
    skipped_amounts: Mapping[str, int]


def summarise(
    events: Iterable[Purchase[K]], *, as_of: datetime, rules: PurchaseRules, rates: ExchangeRates
) -> PurchaseSummary[K]:
    """The RFM inputs of every customer with a purchase strictly before ``as_of``."""
    last: dict[K, datetime] = {}
    count: Counter[K] = Counter()
    total: dict[K, Decimal] = {}
    skipped: Counter[str] = Counter()
    for event in events:
        if not rules.counts(event.event_type) or event.occurred_at >= as_of:
            continue
        key = event.customer
        count[key] += 1
        if key not in last or event.occurred_at > last[key]:
            last[key] = event.occurred_at
        spent = total.setdefault(key, Decimal(0))
        if event.amount is not None:
            try:
                spent += rates.convert(event.amount, event.currency or rates.reporting)
            except UnknownCurrency as unknown:
                skipped[unknown.currency] += 1
            total[key] = spent
    return PurchaseSummary(
        customers=MappingProxyType(
            {k: RfmInput((as_of - last[k]).days, count[k], total[k]) for k in last}
        ),
        skipped_amounts=MappingProxyType(dict(skipped)),
    )


@dataclass(frozen=True)
class RfmScore:
    """Quintile scores, 5 best."""

    r: int
    f: int
    m: int
    score: int  #: r + f + m, 3 to 15

    @property
    def code(self) -> int:
        """The RFM cell: ``r*100 + f*10 + m``."""
        return self.r * 100 + self.f * 10 + self.m


def quintiles(values: Mapping[K, int | Decimal]) -> dict[K, int]:
    """Scores 1 to 5 by the module's rule, higher values scoring higher."""
    n = len(values)
    tally = Counter(values.values())
    ranks: dict[int | Decimal, int] = {}
    below = 0
    for value in sorted(tally):
        equal = tally[value]
        ranks[value] = 1 + (QUINTILES * (2 * below + equal)) // (2 * n)
        below += equal
    return {key: ranks[value] for key, value in values.items()}


def score(population: Mapping[K, RfmInput]) -> dict[K, RfmScore]:
    """RFM scores of every customer in ``population`` (empty in, empty out)."""
    for key, activity in population.items():
        if activity.recency_days < 0 or activity.frequency < 1:
            raise ValueError(f"customer {key!r}: recency must be ≥ 0 and frequency ≥ 1")
        if not activity.monetary.is_finite():
            raise ValueError(f"customer {key!r}: monetary must be finite")
    r = quintiles({k: -a.recency_days for k, a in population.items()})
    f = quintiles({k: a.frequency for k, a in population.items()})
    m = quintiles({k: a.monetary for k, a in population.items()})
    return {k: RfmScore(r[k], f[k], m[k], r[k] + f[k] + m[k]) for k in population}
