"""GraphQL of insight: ``dashboard(input:)``, the time series of one period.

Every series has the same buckets (``bucketStarts``); a bucket without data is there with 0
(counts) and, for the snapshot series, with null where the daily analytics run kept no quality
snapshot in it. Aggregates only: no series names a person.
"""

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

import strawberry
from strawberry.types.info import Info

from cdlm.analytics import rfm
from cdlm.analytics.api import RUN_READERS
from cdlm.config import AnalyticsSettings
from cdlm.core.periods import MAX_POINTS
from cdlm.graphql.errors import Outcomes, ValidationError, errors_as_data
from cdlm.graphql.permissions import allow, require_principal
from cdlm.graphql.vocabulary import Interval
from cdlm.insight import service
from cdlm.insight.models import QualitySnapshot
from cdlm.quality.api import FieldPresence, ScoreBucket
from cdlm.quality.fields import PROFILE, profile_path


def revenue_rules(config: AnalyticsSettings) -> tuple[rfm.PurchaseRules, rfm.ExchangeRates]:
    """The analytics run's purchase rules and exchange rates (the same settings)."""
    return (
        rfm.PurchaseRules(frozenset(config.purchase_types)),
        rfm.ExchangeRates(config.currency, dict(config.rates)),
    )


@strawberry.input(description="The period and bucket width of a dashboard.")
class DashboardInput:
    from_: datetime | None = strawberry.field(
        name="from",
        default=None,
        description="Start of the period (inclusive), with a time zone. Required: null is "
        "refused with a ValidationError (REQUIRED) on `input.from`.",
    )
    to: datetime | None = strawberry.field(
        default=None,
        description="End of the period (exclusive), with a time zone, after `from`. Required: "
        "null is refused with a ValidationError (REQUIRED) on `input.to`.",
    )
    interval: Interval = strawberry.field(
        default=Interval.DAY,
        description=f"Width of each bucket (default DAY). A period of more than {MAX_POINTS} "
        "buckets is refused with a ValidationError on `input.interval`.",
    )


_START = "Start of the bucket (UTC midnight of its day, Monday of its week or 1st of its month)."


@strawberry.type(description="A count in one bucket.")
class CountPoint:
    start: datetime = strawberry.field(description=_START)
    value: int = strawberry.field(description="The count in the bucket (0 when none).")


@strawberry.type(description="A share in one bucket, 0 to 1 (4 decimals).")
class RatePoint:
    start: datetime = strawberry.field(description=_START)
    value: float | None = strawberry.field(
        description="The share, 0 to 1 (4 decimals); null when it is not defined for the "
        "bucket (no customers then, or no quality snapshot kept in it)."
    )


@strawberry.type(description="A count read from the quality snapshot of one bucket.")
class SnapshotCountPoint:
    start: datetime = strawberry.field(description=_START)
    value: int | None = strawberry.field(
        description="The count in the bucket's latest snapshot; null when no snapshot was "
        "kept in the bucket."
    )


@strawberry.type(description="Revenue of one bucket.")
class MoneyPoint:
    start: datetime = strawberry.field(description=_START)
    amount: Decimal = strawberry.field(
        description="Sum of the purchases' amounts in the reporting currency (`currency` of "
        "the revenue), as a decimal string; 0 when none."
    )
    purchases: int = strawberry.field(description="Purchase events in the bucket.")


@strawberry.type(description="New customers from one acquisition source, per bucket.")
class AcquisitionSeries:
    source: str | None = strawberry.field(
        description="The acquisition source (the system of the customer's first source "
        "record, e.g. `webshop`); null: not known."
    )
    points: list[CountPoint] = strawberry.field(
        description="Customers created in each bucket (their profile's creation time)."
    )


@strawberry.type(description="Events of one type, per bucket.")
class EventTypeSeries:
    event_type: str = strawberry.field(description="The event type, e.g. `purchase`.")
    points: list[CountPoint] = strawberry.field(description="Events that occurred in each bucket.")


@strawberry.type(
    description="Purchase revenue per bucket, counted as the analytics run counts it: events "
    "of its purchase types (CDLM_ANALYTICS_PURCHASE_TYPES), converted with its rates "
    "(CDLM_ANALYTICS_RATES)."
)
class RevenueSeries:
    currency: str = strawberry.field(
        description="The reporting currency of every amount (ISO 4217, CDLM_ANALYTICS_CURRENCY)."
    )
    points: list[MoneyPoint] = strawberry.field(description="Revenue of each bucket.")
    unconverted_purchases: int = strawberry.field(
        description="Purchases of the period whose amount is in a currency without a rate: "
        "counted in `purchases`, left out of `amount`."
    )


@strawberry.type(description="The opt-in rate of one purpose at the end of each bucket.")
class OptInSeries:
    purpose_code: str = strawberry.field(description="The purpose's code.")
    purpose_name: str = strawberry.field(description="The purpose's name.")
    points: list[RatePoint] = strawberry.field(
        description="Share of the counted customers existing at the bucket's end (or the "
        "period's) whose latest decision by then grants the purpose (the definition of "
        "`consentOptInRates`); null when there was no customer."
    )


@strawberry.type(description="Data subject requests per bucket.")
class DataSubjectRequestSeries:
    received: list[CountPoint] = strawberry.field(
        description="Requests received in each bucket (every request, duplicates included)."
    )
    completed: list[CountPoint] = strawberry.field(
        description="Requests completed in each bucket (status COMPLETED; denied and "
        "cancelled ones are not counted)."
    )
    completed_on_time: list[CountPoint] = strawberry.field(
        description="Of those, the ones completed by their due date (the request's legal "
        "clock: pauses while waiting on the requester and an extension included)."
    )


@strawberry.type(description="Records disposed of by retention sweeps, for one category.")
class DisposalSeries:
    category: str = strawberry.field(description="The retention policy's data category.")
    points: list[CountPoint] = strawberry.field(
        description="Records disposed of (deleted, anonymized, archived or crypto-shredded) by "
        "the sweeps whose as-of moment falls in each bucket."
    )


@strawberry.type(description="The completeness of one profile field, from quality snapshots.")
class FieldCompletenessSeries:
    field: str = strawberry.field(
        description="The profile field, as its API path below a customer: `profile.email`."
    )
    points: list[RatePoint] = strawberry.field(
        description="Share of the counted customers with a value for the field, from the "
        "bucket's latest snapshot; null when none was kept."
    )


@strawberry.type(description="Open refused values from one source system, from snapshots.")
class RefusedValuesSeries:
    source_system: str | None = strawberry.field(
        description="The source system that sent the values; null: not traced to a source record."
    )
    points: list[SnapshotCountPoint] = strawberry.field(
        description="Refused values still open in the bucket's latest snapshot."
    )


@strawberry.type(description="Open refused values from one source system.")
class RefusedValueCount:
    source_system: str | None = strawberry.field(
        description="The source system; null: not traced to a source record."
    )
    open: int = strawberry.field(
        description="Refused values not yet replaced by a valid value of the same field."
    )


_POSITIONS = {f.name: i for i, f in enumerate(PROFILE)}


def _profile_order(item: tuple[str, int]) -> tuple[int, str]:
    """Profile fields in the profile's order (JSON objects keep no order in PostgreSQL)."""
    return (_POSITIONS.get(item[0], len(_POSITIONS)), item[0])


@strawberry.type(
    name="QualitySnapshot",
    description="The quality of the customer data at one moment, as the daily analytics run "
    "read it. Counts leave out erased, restricted and merged-away customers.",
)
class QualitySnapshotFigures:
    taken_at: datetime = strawberry.field(description="When the figures were read.")
    customers: int = strawberry.field(description="Customers counted.")
    average_score: float | None = strawberry.field(
        description="Average quality score, 0 to 1 (4 decimals); null when no customer."
    )
    score_buckets: list[ScoreBucket] = strawberry.field(
        description="The score distribution, in five equal ranges from 0 to 1."
    )
    field_presence: list[FieldPresence] = strawberry.field(
        description="Per profile field, how many customers had a value."
    )
    open_refused_values: list[RefusedValueCount] = strawberry.field(
        description="Open refused values per source system, most first."
    )

    @classmethod
    def of(cls, row: QualitySnapshot) -> "QualitySnapshotFigures":
        total = row.customers
        return cls(
            taken_at=row.taken_at,
            customers=total,
            average_score=row.average_score,
            score_buckets=[
                ScoreBucket(from_score=low, to_score=high, customers=n)
                for low, high, n in row.score_buckets
            ],
            field_presence=[
                FieldPresence(
                    field=profile_path(name),
                    customers=n,
                    share=round(n / total, 4) if total else 0.0,
                )
                for name, n in sorted(row.field_presence.items(), key=_profile_order)
            ],
            open_refused_values=[
                RefusedValueCount(source_system=s, open=n) for s, n in row.open_refused
            ],
        )


@strawberry.type(
    description="Quality over time, from the snapshots the daily analytics run keeps (scores, "
    "completeness and refused values cannot be rebuilt for the past)."
)
class QualityTrend:
    average_score: list[RatePoint] = strawberry.field(
        description="Average quality score (0 to 1) of the bucket's latest snapshot; null "
        "when no snapshot was kept in the bucket."
    )
    customers: list[SnapshotCountPoint] = strawberry.field(
        description="Customers counted by the bucket's latest snapshot."
    )
    field_completeness: list[FieldCompletenessSeries] = strawberry.field(
        description="Per profile field, in the profile's order."
    )
    open_refused_values: list[RefusedValuesSeries] = strawberry.field(
        description="Per source system seen in the period's snapshots."
    )
    latest_snapshot: QualitySnapshotFigures | None = strawberry.field(
        description="The newest snapshot taken before the period's end, whether or not it "
        "falls in the period (the figures as they stood at the end); null when none was "
        "ever taken before then."
    )


def _counts(points: tuple[service.Point[int], ...]) -> list[CountPoint]:
    return [CountPoint(start=p.start, value=p.value) for p in points]


def _rates(points: tuple[service.Point[float | None], ...]) -> list[RatePoint]:
    return [RatePoint(start=p.start, value=p.value) for p in points]


@strawberry.type(
    description="Time series of one period, all with the same buckets. Computed from clear "
    "columns only; customers left out of analysis (erased, restricted, merged away) are left "
    "out of every customer and event count."
)
class Dashboard:
    from_: datetime = strawberry.field(name="from", description="Start of the period (UTC).")
    to: datetime = strawberry.field(description="End of the period, exclusive (UTC).")
    interval: Interval = strawberry.field(description="Width of each bucket.")
    bucket_starts: list[datetime] = strawberry.field(
        description="Start of every bucket, oldest first: the first and last buckets may "
        "reach outside the period; only what falls inside it is counted."
    )
    new_customers: list[AcquisitionSeries] = strawberry.field(
        description="New customers per acquisition source (sources with none in the period "
        "are left out)."
    )
    active_customers: list[CountPoint] = strawberry.field(
        description="Customers with at least one event in each bucket."
    )
    events: list[EventTypeSeries] = strawberry.field(
        description="Events per type (types without events in the period are left out)."
    )
    revenue: RevenueSeries = strawberry.field(description="Purchase revenue per bucket.")
    opt_in_rates: list[OptInSeries] = strawberry.field(
        description="Consent opt-in rate per purpose, by purpose code."
    )
    data_subject_requests: DataSubjectRequestSeries = strawberry.field(
        description="Requests received, completed and completed on time."
    )
    retention_disposals: list[DisposalSeries] = strawberry.field(
        description="Records disposed of per retention category (categories without "
        "disposals in the period are left out)."
    )
    quality: QualityTrend = strawberry.field(description="Quality over time, from snapshots.")

    @classmethod
    def of(cls, found: service.Dashboard) -> "Dashboard":
        quality = found.quality
        return cls(
            from_=found.start,
            to=found.end,
            interval=found.interval,
            bucket_starts=list(found.buckets),
            new_customers=[
                AcquisitionSeries(source=s.key, points=_counts(s.points))
                for s in found.new_customers
            ],
            active_customers=_counts(found.active_customers),
            events=[
                EventTypeSeries(event_type=s.key or "", points=_counts(s.points))
                for s in found.events
            ],
            revenue=RevenueSeries(
                currency=found.revenue.currency,
                points=[
                    MoneyPoint(start=a.start, amount=a.value, purchases=n.value)
                    for a, n in zip(found.revenue.amounts, found.revenue.purchases, strict=True)
                ],
                unconverted_purchases=found.revenue.unconverted,
            ),
            opt_in_rates=[
                OptInSeries(purpose_code=s.code, purpose_name=s.name, points=_rates(s.points))
                for s in found.opt_in
            ],
            data_subject_requests=DataSubjectRequestSeries(
                received=_counts(found.requests.received),
                completed=_counts(found.requests.completed),
                completed_on_time=_counts(found.requests.completed_on_time),
            ),
            retention_disposals=[
                DisposalSeries(category=s.key or "", points=_counts(s.points))
                for s in found.disposals
            ],
            quality=QualityTrend(
                average_score=_rates(quality.average_score),
                customers=[
                    SnapshotCountPoint(start=p.start, value=p.value) for p in quality.customers
                ],
                field_completeness=[
                    FieldCompletenessSeries(
                        field=profile_path(s.key or ""), points=_rates(s.points)
                    )
                    for s in quality.completeness
                ],
                open_refused_values=[
                    RefusedValuesSeries(
                        source_system=s.key,
                        points=[SnapshotCountPoint(start=p.start, value=p.value) for p in s.points],
                    )
                    for s in quality.open_refused
                ],
                latest_snapshot=QualitySnapshotFigures.of(quality.latest)
                if quality.latest is not None
                else None,
            ),
        )


DASHBOARD = Outcomes(
    "DashboardResult",
    Dashboard,
    {
        ValidationError: "a bound is missing, lacks a time zone or is out of range once in "
        f"UTC, `to` is not after `from`, or the period has more than {MAX_POINTS} buckets "
        "(every problem is listed with its path)",
    },
)
DashboardResult = Annotated[Dashboard | ValidationError, DASHBOARD.marker]


@strawberry.type
class InsightQuery:
    @strawberry.field(
        description=DASHBOARD.describe(
            "Time series of one period: new customers by source, active customers, events by "
            "type, revenue, consent opt-in rates, data subject requests, retention disposals "
            "and quality over time."
        ),
        extensions=allow(*RUN_READERS),
    )
    @errors_as_data
    async def dashboard(
        self,
        info: Info[Any, Any],
        input: Annotated[
            DashboardInput, strawberry.argument(description="The period and its buckets.")
        ],
    ) -> DashboardResult:
        purchases, rates = revenue_rules(info.context.settings.analytics)
        query = service.DashboardQuery(input.from_, input.to, input.interval, purchases, rates)
        return Dashboard.of(await service.dashboard(await require_principal(info), query))
