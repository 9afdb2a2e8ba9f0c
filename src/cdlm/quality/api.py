"""GraphQL API of data quality."""

import strawberry

from cdlm.core.roles import Role
from cdlm.graphql.permissions import allow
from cdlm.quality import service


@strawberry.type
class ScoreBucket:
    from_score: float
    to_score: float
    customers: int


@strawberry.type
class FieldPresence:
    field: str
    customers: int
    share: float = strawberry.field(description="Share of all customers that have the field.")


@strawberry.type
class InvalidValueCount:
    field: str
    code: str
    open: int = strawberry.field(description="Refused values not yet replaced by valid ones.")


@strawberry.type
class SourceQuality:
    source_system: str
    customers: int
    average_score: float


@strawberry.type(description="How good the customer data is, in aggregate (no personal data).")
class DataQualityReport:
    customers: int
    average_score: float | None
    score_buckets: list[ScoreBucket]
    field_presence: list[FieldPresence]
    invalid_values: list[InvalidValueCount]
    by_source: list[SourceQuality]


@strawberry.type
class QualityQuery:
    @strawberry.field(
        description="Scores, missing fields and refused values across all customers.",
        extensions=allow(Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST),
    )
    async def data_quality_report(self) -> DataQualityReport:
        found = await service.report()
        total = found.customers
        return DataQualityReport(
            customers=total,
            average_score=found.average_score,
            score_buckets=[
                ScoreBucket(from_score=low, to_score=high, customers=n)
                for low, high, n in found.score_buckets
            ],
            field_presence=[
                FieldPresence(field=name, customers=n, share=round(n / total, 4) if total else 0.0)
                for name, n in found.field_presence
            ],
            invalid_values=[
                InvalidValueCount(field=f, code=c, open=n) for f, c, n in found.open_invalid
            ],
            by_source=[
                SourceQuality(source_system=s, customers=n, average_score=a)
                for s, n, a in found.by_source
            ],
        )
