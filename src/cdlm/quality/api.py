"""GraphQL API of data quality."""

import strawberry

from cdlm.core.errors import ErrorCode
from cdlm.core.roles import Role
from cdlm.graphql.permissions import allow
from cdlm.quality import service
from cdlm.quality.fields import profile_path


@strawberry.type(description="How many customers have a quality score in one range.")
class ScoreBucket:
    from_score: float = strawberry.field(description="Lower bound of the range (inclusive).")
    to_score: float = strawberry.field(
        description="Upper bound of the range (exclusive, except 1 for the last range)."
    )
    customers: int = strawberry.field(description="Customers whose stored score is in the range.")


@strawberry.type(description="How many customers have a value for one profile field.")
class FieldPresence:
    field: str = strawberry.field(
        description="The profile field, as its API path below a customer: `profile.email`, "
        "`profile.address.postalCode`."
    )
    customers: int = strawberry.field(description="Customers with a value for the field.")
    share: float = strawberry.field(
        description="Share of all counted customers with the field, 0 to 1 (4 decimals)."
    )


@strawberry.type(description="Refused values of one profile field, for one reason.")
class InvalidValueCount:
    field: str = strawberry.field(
        description="The profile field, as its API path below a customer: `profile.phone`."
    )
    code: ErrorCode = strawberry.field(description="Why the values were refused.")
    open: int = strawberry.field(
        description="Refused values not yet replaced by a valid value of the same field."
    )


@strawberry.type(description="Quality of the customers one source system sent data about.")
class SourceQuality:
    source_system: str = strawberry.field(description="The source system, e.g. `crm`.")
    customers: int = strawberry.field(description="Counted customers this source sent.")
    average_score: float = strawberry.field(
        description="Their average stored quality score, 0 to 1 (4 decimals)."
    )


@strawberry.type(
    description="How good the customer data is, in aggregate (no personal data). Counts leave "
    "out erased customers, restricted ones (GDPR Art. 18) and profiles merged into others."
)
class DataQualityReport:
    customers: int = strawberry.field(description="How many customers are counted.")
    average_score: float | None = strawberry.field(
        description="Average stored quality score, 0 to 1 (4 decimals); null when no customer "
        "is counted."
    )
    score_buckets: list[ScoreBucket] = strawberry.field(
        description="Customers per score range, five ranges of 0.2 from 0 to 1."
    )
    field_presence: list[FieldPresence] = strawberry.field(
        description="Per profile field, how many customers have it: the fields that count for "
        "completeness first, then the optional ones."
    )
    invalid_values: list[InvalidValueCount] = strawberry.field(
        description="Refused values still open, per field and reason, most frequent first."
    )
    by_source: list[SourceQuality] = strawberry.field(
        description="Per source system, its customers and their average score, largest first."
    )


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
                FieldPresence(
                    field=profile_path(name),
                    customers=n,
                    share=round(n / total, 4) if total else 0.0,
                )
                for name, n in found.field_presence
            ],
            invalid_values=[
                InvalidValueCount(field=profile_path(name), code=ErrorCode(code), open=n)
                for name, code, n in found.open_invalid
            ],
            by_source=[
                SourceQuality(source_system=s, customers=n, average_score=a)
                for s, n, a in found.by_source
            ],
        )
