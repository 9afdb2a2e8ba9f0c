"""GraphQL enums shared by several domains' APIs, registered once."""

from __future__ import annotations

from cdlm.core.identifiers import IdentifierKind
from cdlm.core.periods import Interval
from cdlm.core.vocabulary import LawfulBasis, LifecycleStage, SourceKind
from cdlm.graphql.enums import describe_enum

describe_enum(
    LifecycleStage,
    "Where a customer is in the relationship.",
    {
        LifecycleStage.LEAD: "Known, not yet qualified.",
        LifecycleStage.PROSPECT: "Qualified, not yet a buyer.",
        LifecycleStage.ACTIVE: "A current customer.",
        LifecycleStage.INACTIVE: "A customer with no recent activity.",
        LifecycleStage.CHURNED: "A former customer.",
    },
)
describe_enum(
    SourceKind,
    "Kind of touchpoint data came from; it sets the data's default trust in survivorship.",
    {
        SourceKind.CRM: "The CRM (trust 80).",
        SourceKind.WEB_FORM: "A form on a website (trust 50).",
        SourceKind.SUPPORT: "Customer support (trust 60).",
        SourceKind.TRANSACTION: "A purchase or payment system (trust 70).",
        SourceKind.THIRD_PARTY: "Data bought or shared from another company (trust 30).",
        SourceKind.IMPORT: "A file import (trust 40).",
        SourceKind.STAFF: "A staff rectification (trust 100, outranks every source).",
        SourceKind.SURVEY: "Answers to a survey, e.g. a feedback or NPS survey (trust 45).",
        SourceKind.SOCIAL: "A social network: a public profile or a mention (trust 35).",
    },
)
describe_enum(
    LawfulBasis,
    "GDPR Art. 6(1) lawful basis of processing.",
    {
        LawfulBasis.CONSENT: "Art. 6(1)(a): the person consented to the purpose.",
        LawfulBasis.CONTRACT: "Art. 6(1)(b): needed for a contract with the person.",
        LawfulBasis.LEGAL_OBLIGATION: "Art. 6(1)(c): required by law.",
        LawfulBasis.VITAL_INTERESTS: "Art. 6(1)(d): to protect someone's life.",
        LawfulBasis.PUBLIC_TASK: "Art. 6(1)(e): a task in the public interest.",
        LawfulBasis.LEGITIMATE_INTERESTS: "Art. 6(1)(f): the business's legitimate interests, "
        "balanced against the person's (they may object).",
    },
)
describe_enum(
    IdentifierKind,
    "Kinds of identifier, strongest first.",
    {
        IdentifierKind.EXTERNAL_ID: "An id in another system, written `system:id` (crm:123).",
        IdentifierKind.EMAIL: "An email address.",
        IdentifierKind.PHONE: "A phone number (E.164, or national with the country).",
    },
)
describe_enum(
    Interval,
    "The width of a report's buckets (periods), in UTC: a report of [`from`, `to`) has a "
    "bucket for every one of these that overlaps it.",
    {
        Interval.DAY: "A UTC day: midnight UTC to the next midnight UTC.",
        Interval.WEEK: "An ISO week: Monday 00:00 UTC to the next Monday 00:00 UTC.",
        Interval.MONTH: "A calendar month: the 1st 00:00 UTC to the next month's 1st 00:00 UTC.",
    },
    name="ReportInterval",
)

__all__ = ["IdentifierKind", "Interval", "LawfulBasis", "LifecycleStage", "SourceKind"]
