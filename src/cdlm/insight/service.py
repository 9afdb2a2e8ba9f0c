"""The dashboard: time series of how customer data moves, computed in SQL over clear columns.

:func:`dashboard` answers one period and interval with a constant number of statements (one per
series group, run concurrently), whatever the data's size: new customers by acquisition
source, active customers, events by type, revenue in the reporting currency, consent opt-in
rates per purpose, data subject requests received / completed / completed on time, retention
disposals, and the quality figures of the snapshots the daily analytics run keeps
(:mod:`cdlm.insight.snapshots`). Nothing is decrypted; customers left out of analysis (erased,
restricted, merged away) are left out as the analytics run leaves them out.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, Protocol, TypeVar

from cdlm.consent import service as consent
from cdlm.consent.models import Decision
from cdlm.core import periods
from cdlm.core.periods import Interval
from cdlm.core.principal import Principal
from cdlm.db.reads import read_connection, replica_reads
from cdlm.dsr.workflow import Status
from cdlm.insight import snapshots, sql
from cdlm.insight.models import QualitySnapshot
from cdlm.quality.fields import PROFILE

V = TypeVar("V")


class PurchaseRules(Protocol):
    """Which events are purchases (:class:`cdlm.analytics.rfm.PurchaseRules`)."""

    @property
    def event_types(self) -> frozenset[str]: ...


class ExchangeRates(Protocol):
    """Rates to the reporting currency (:class:`cdlm.analytics.rfm.ExchangeRates`)."""

    @property
    def reporting(self) -> str: ...
    @property
    def rates(self) -> Mapping[str, Decimal]: ...


@dataclass(frozen=True)
class DashboardQuery:
    """The period ``[start, end)`` (both required, timezone-aware), its bucket width, and the
    analytics run's rules for revenue. Error paths are the API's (``input.from``...)."""

    start: datetime | None
    end: datetime | None
    interval: Interval
    purchases: PurchaseRules
    rates: ExchangeRates


@dataclass(frozen=True)
class Point(Generic[V]):
    """One bucket's value; ``start`` is the bucket's start (UTC)."""

    start: datetime
    value: V


@dataclass(frozen=True)
class Series(Generic[V]):
    """A value per bucket for one key (a source, an event type, a purpose...)."""

    key: str | None
    points: tuple[Point[V], ...]


@dataclass(frozen=True)
class Requests:
    """Data subject requests per bucket."""

    received: tuple[Point[int], ...]
    completed: tuple[Point[int], ...]
    completed_on_time: tuple[Point[int], ...]


@dataclass(frozen=True)
class Revenue:
    """Purchase amounts per bucket in the reporting currency, and what could not be
    converted."""

    currency: str
    amounts: tuple[Point[Decimal], ...]
    purchases: tuple[Point[int], ...]
    unconverted: int


@dataclass(frozen=True)
class OptInSeries:
    """A purpose's opt-in rate at the end of each bucket (None: no customer then)."""

    code: str
    name: str
    points: tuple[Point[float | None], ...]


@dataclass(frozen=True)
class Quality:
    """The snapshot series: per bucket, the figures of its latest snapshot (None: none)."""

    average_score: tuple[Point[float | None], ...]
    customers: tuple[Point[int | None], ...]
    completeness: tuple[Series[float | None], ...]  #: key: profile field name
    open_refused: tuple[Series[int | None], ...]  #: key: source system (None: untraced)
    latest: QualitySnapshot | None


@dataclass(frozen=True)
class Dashboard:
    """Every series of one period, all with the same buckets."""

    start: datetime
    end: datetime
    interval: Interval
    buckets: tuple[datetime, ...]
    new_customers: tuple[Series[int], ...]  #: key: acquisition source (None: unknown)
    active_customers: tuple[Point[int], ...]
    events: tuple[Series[int], ...]  #: key: event type
    revenue: Revenue
    opt_in: tuple[OptInSeries, ...]
    requests: Requests
    disposals: tuple[Series[int], ...]  #: key: retention category
    quality: Quality


async def _rows(statement: str, arguments: list[Any]) -> list[dict[str, Any]]:
    return await read_connection().execute_query_dict(statement, arguments)


def _keyed(rows: list[dict[str, Any]]) -> tuple[Series[int], ...]:
    grouped: dict[str | None, list[Point[int]]] = {}
    for row in rows:
        grouped.setdefault(row["key"], []).append(Point(row["start"], int(row["value"])))
    return tuple(Series(key, tuple(points)) for key, points in grouped.items())


def _json(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _quality(rows: list[dict[str, Any]], latest: QualitySnapshot | None) -> Quality:
    taken = [
        (row["start"], row, _json(row["field_presence"]), _json(row["open_refused"]))
        for row in rows
    ]
    sources = sorted(
        {
            source
            for _, row, _, refused in taken
            if row["customers"] is not None
            for source, _ in refused
        },
        key=lambda s: (s is None, s or ""),
    )

    def share(row: dict[str, Any], presence: dict[str, int], name: str) -> float | None:
        if row["customers"] is None:
            return None
        return round(presence.get(name, 0) / row["customers"], 4) if row["customers"] else 0.0

    def refused(row: dict[str, Any], found: list[list[Any]], source: str | None) -> int | None:
        if row["customers"] is None:
            return None
        return sum(int(n) for s, n in found if s == source)

    return Quality(
        average_score=tuple(Point(start, row["average_score"]) for start, row, _, _ in taken),
        customers=tuple(Point(start, row["customers"]) for start, row, _, _ in taken),
        completeness=tuple(
            Series(
                f.name,
                tuple(
                    Point(start, share(row, presence or {}, f.name))
                    for start, row, presence, _ in taken
                ),
            )
            for f in PROFILE
        ),
        open_refused=tuple(
            Series(
                source,
                tuple(
                    Point(start, refused(row, found or [], source))
                    for start, row, _, found in taken
                ),
            )
            for source in sources
        ),
        latest=latest,
    )


@replica_reads
async def dashboard(actor: Principal, query: DashboardQuery) -> Dashboard:
    """Every series of the query's period (refused as :func:`cdlm.core.periods.check` says:
    every problem at once, on the API's paths). Aggregates only; the caller's role is checked
    by the API (analytics readers) before this runs."""
    start, end = periods.check(query.start, query.end, query.interval)
    base: list[Any] = [start, end, query.interval.value]
    rates = dict(query.rates.rates)
    rates.setdefault(query.rates.reporting, Decimal(1))
    purposes = await consent.all_purposes()
    statements = [
        (sql.NEW_CUSTOMERS, base),
        (sql.ACTIVE_CUSTOMERS, base),
        (sql.EVENTS_BY_TYPE, base),
        (
            sql.REVENUE,
            [
                *base,
                sorted(query.purchases.event_types),
                list(rates),
                list(rates.values()),
                query.rates.reporting,
            ],
        ),
        (sql.OPT_IN, [*base, [p.id for p in purposes], Decision.GRANTED.value]),
        (sql.REQUESTS, [*base, Status.COMPLETED.value]),
        (sql.DISPOSALS, base),
        (sql.SNAPSHOTS, base),
    ]
    results, latest = await asyncio.gather(
        asyncio.gather(*(_rows(statement, arguments) for statement, arguments in statements)),
        snapshots.latest(end),
    )
    new, active, events, revenue, opt_in, requests, disposals, quality = results
    return Dashboard(
        start=start,
        end=end,
        interval=query.interval,
        buckets=tuple(row["start"] for row in active),
        new_customers=_keyed(new),
        active_customers=tuple(Point(row["start"], int(row["value"])) for row in active),
        events=_keyed(events),
        revenue=Revenue(
            currency=query.rates.reporting,
            amounts=tuple(Point(row["start"], Decimal(row["amount"])) for row in revenue),
            purchases=tuple(Point(row["start"], int(row["purchases"])) for row in revenue),
            unconverted=sum(int(row["unconverted"]) for row in revenue),
        ),
        opt_in=_opt_in(opt_in, purposes),
        requests=Requests(
            received=tuple(Point(row["start"], int(row["received"])) for row in requests),
            completed=tuple(Point(row["start"], int(row["completed"])) for row in requests),
            completed_on_time=tuple(Point(row["start"], int(row["on_time"])) for row in requests),
        ),
        disposals=_keyed(disposals),
        quality=_quality(quality, latest),
    )


def _opt_in(rows: list[dict[str, Any]], purposes: Sequence[Any]) -> tuple[OptInSeries, ...]:
    grouped: dict[Any, list[Point[float | None]]] = {}
    for row in rows:
        customers = int(row["customers"])
        rate = round(int(row["granted"]) / customers, 4) if customers else None
        grouped.setdefault(row["purpose_id"], []).append(Point(row["start"], rate))
    return tuple(OptInSeries(p.code, p.name, tuple(grouped.get(p.id, ()))) for p in purposes)
