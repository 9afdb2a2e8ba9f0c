"""Closed sets of values several domains share (their GraphQL enums are registered once, in
:mod:`cdlm.graphql.vocabulary`)."""

from __future__ import annotations

from enum import StrEnum


class LifecycleStage(StrEnum):
    """Where a customer is in the relationship."""

    LEAD = "lead"
    PROSPECT = "prospect"
    ACTIVE = "active"
    INACTIVE = "inactive"
    CHURNED = "churned"


class SourceKind(StrEnum):
    """What kind of touchpoint a record came from (sets its default trust)."""

    CRM = "crm"
    WEB_FORM = "web_form"
    SUPPORT = "support"
    TRANSACTION = "transaction"
    THIRD_PARTY = "third_party"
    IMPORT = "import"
    STAFF = "staff"
    SURVEY = "survey"
    SOCIAL = "social"


class LawfulBasis(StrEnum):
    """GDPR Art. 6(1) lawful bases of processing."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"


def covers(purpose_category: str, data_category: str) -> bool:
    """Whether a purpose's fideslang data category covers a field's: equal or an ancestor
    (or a descendant: a purpose using ``user.contact.email`` uses part of a source record's
    ``user`` data). The one rule for the data map and for what a segment export may hold."""
    return (
        data_category == purpose_category
        or data_category.startswith(purpose_category + ".")
        or purpose_category.startswith(data_category + ".")
    )
