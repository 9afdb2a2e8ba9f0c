"""``Customer.analytics``: the coarse attributes and scores kept in clear for analysis."""

from datetime import datetime
from decimal import Decimal

import strawberry

from cdlm.core.roles import Role
from cdlm.customers.attributes import ATTRIBUTES, BY_COLUMN
from cdlm.customers.models import CustomerAttributes

#: Who reads a customer's analysis (the coarse attributes and scores; never the values behind).
ANALYTICS_READERS = (Role.ADMIN, Role.PRIVACY_OFFICER, Role.STEWARD, Role.ANALYST)


@strawberry.type(
    description="Coarse attributes derived from the customer's data, in clear for analysis: "
    "categories, never the personal values behind them. Null: not known."
)
class CustomerAttributeValues:
    country: str | None = strawberry.field(description="Address country, ISO 3166-1 alpha-2.")
    region: str | None = strawberry.field(description="Address region (ISO 3166-2 or name).")
    age_band: str | None = strawberry.field(
        description="Age band as of the derivation, e.g. `25-34`, `65+`, `under 18`."
    )
    acquisition_source: str | None = strawberry.field(
        description="The system of the customer's first source record."
    )
    phone_country: str | None = strawberry.field(
        description="Country of the phone number, ISO 3166-1 alpha-2."
    )
    phone_line_type: str | None = strawberry.field(
        description="Line type of the phone number (mobile, fixed_line, voip, ...)."
    )
    email_domain_kind: str | None = strawberry.field(
        description="Kind of the email's domain (free_mail, disposable, role_account, "
        "organisation)."
    )
    sentiment_average: float | None = strawberry.field(
        description="Average sentiment of the customer's feedback, -1 to 1."
    )


@strawberry.type(description="Recency, frequency and monetary quintiles (5 best).")
class RfmScore:
    r: int = strawberry.field(description="Recency quintile: 5 bought most recently.")
    f: int = strawberry.field(description="Frequency quintile: 5 bought most often.")
    m: int = strawberry.field(description="Monetary quintile: 5 spent most.")

    @strawberry.field(description="The three as one code, e.g. 545.")
    def score(self) -> int:
        return self.r * 100 + self.f * 10 + self.m


@strawberry.type(description="Where one derived attribute came from.")
class AttributeDerivation:
    attribute: str = strawberry.field(
        description="The attribute's path below `Customer.analytics`, e.g. `attributes.ageBand`."
    )
    source: str = strawberry.field(
        description="`profile.<field>` (a source value as it is), `sources` (the source "
        "records) or `enricher:<name>@<version>`."
    )


@strawberry.type(
    description="What analysis says about the customer: scores of the last analytics run and "
    "the attributes derived from the profile."
)
class CustomerAnalytics:
    rfm: RfmScore | None = strawberry.field(description="Null until a run scored the customer.")
    expected_purchases_90d: float | None = strawberry.field(
        description="Expected purchases in the 90 days after the run's as-of date (BG/NBD)."
    )
    expected_purchases_365d: float | None = strawberry.field(
        description="Expected purchases in the 365 days after the run's as-of date (BG/NBD)."
    )
    p_alive: float | None = strawberry.field(
        description="Probability the customer is still active, 0 to 1 (BG/NBD)."
    )
    expected_value_365d: Decimal | None = strawberry.field(
        description="Expected spend over 365 days, in the reporting currency "
        "(BG/NBD and Gamma-Gamma)."
    )
    churn_risk: float | None = strawberry.field(
        description="Churn risk, 0 (safe) to 1 (lost): P(alive) combined with recency."
    )
    attributes: CustomerAttributeValues = strawberry.field(
        description="Coarse attributes derived from the profile and sources."
    )
    derivation: list[AttributeDerivation] = strawberry.field(
        description="Where each derived attribute came from (enrichment lineage)."
    )
    derived_at: datetime | None = strawberry.field(
        description="When the attributes were last derived; null: never."
    )
    scored_at: datetime | None = strawberry.field(
        description="As-of date of the scores; null: no run scored the customer yet."
    )

    @classmethod
    def of(cls, row: CustomerAttributes | None) -> "CustomerAnalytics":
        """The analytics shown for a row (all null before the first derivation)."""
        if row is None:
            return cls(
                rfm=None,
                expected_purchases_90d=None,
                expected_purchases_365d=None,
                p_alive=None,
                expected_value_365d=None,
                churn_risk=None,
                attributes=CustomerAttributeValues(**dict.fromkeys(_ATTRIBUTE_FIELDS)),
                derivation=[],
                derived_at=None,
                scored_at=None,
            )
        scored = None not in (row.rfm_recency, row.rfm_frequency, row.rfm_monetary)
        return cls(
            rfm=RfmScore(r=row.rfm_recency, f=row.rfm_frequency, m=row.rfm_monetary)
            if scored
            else None,
            expected_purchases_90d=row.expected_purchases_90d,
            expected_purchases_365d=row.expected_purchases_365d,
            p_alive=row.p_alive,
            expected_value_365d=row.expected_value_365d,
            churn_risk=row.churn_risk,
            attributes=CustomerAttributeValues(
                **{name: getattr(row, name) for name in _ATTRIBUTE_FIELDS}
            ),
            derivation=[
                AttributeDerivation(attribute=BY_COLUMN[column].api_path, source=source)
                for column, source in sorted(row.derivation.items())
                if column in BY_COLUMN
            ],
            derived_at=row.derived_at,
            scored_at=row.scored_at,
        )


#: The columns shown under ``attributes`` (the rest are scores, shown beside them).
_ATTRIBUTE_FIELDS: tuple[str, ...] = tuple(
    a.column for a in ATTRIBUTES if a.api_path.startswith("attributes.")
)
