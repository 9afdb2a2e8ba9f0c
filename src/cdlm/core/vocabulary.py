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


class LawfulBasis(StrEnum):
    """GDPR Art. 6(1) lawful bases of processing."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal_obligation"
    VITAL_INTERESTS = "vital_interests"
    PUBLIC_TASK = "public_task"
    LEGITIMATE_INTERESTS = "legitimate_interests"
