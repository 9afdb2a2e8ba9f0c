"""Analysis attributes: the coarse values kept in clear per customer (``customer_attributes``).

Personal values stay sealed; analysis (segments, scores, dashboards) works on these instead.
:data:`ATTRIBUTES` is the one table of them: each names its column, the API name under
``Customer.analytics``, its fideslang data category for the data map and what it is
derived from. Profile attributes are derived again whenever the profile changes; scores are
written by analytics runs; all of them are deleted with the customer (:func:`forget`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from cdlm.customers.models import CustomerAttributes


class AttributeSource(StrEnum):
    """Where an attribute's value comes from."""

    PROFILE = "profile"  #: derived from the profile when it changes (enrichers)
    SOURCES = "sources"  #: from the customer's source records
    EVENTS = "events"  #: computed by an analytics run from the events


@dataclass(frozen=True)
class AnalysisAttribute:
    """One attribute kept in clear for analysis."""

    column: str
    api_path: str  #: camelCase path below ``Customer.analytics``
    category: str  #: fideslang data category
    source: AttributeSource
    derived_from: str  #: for the data map: what the value is derived from


ATTRIBUTES: tuple[AnalysisAttribute, ...] = (
    AnalysisAttribute(
        "country",
        "attributes.country",
        "user.contact.address.country",
        AttributeSource.PROFILE,
        "the address country",
    ),
    AnalysisAttribute(
        "region",
        "attributes.region",
        "user.contact.address.state",
        AttributeSource.PROFILE,
        "the address region, or the postal code where offline data allows",
    ),
    AnalysisAttribute(
        "age_band",
        "attributes.ageBand",
        "user.demographic.age_range",
        AttributeSource.PROFILE,
        "the birth date, as of the derivation",
    ),
    AnalysisAttribute(
        "acquisition_source",
        "attributes.acquisitionSource",
        "user.behavior",
        AttributeSource.SOURCES,
        "the system of the first source record",
    ),
    AnalysisAttribute(
        "phone_country",
        "attributes.phoneCountry",
        "user.contact.phone_number",
        AttributeSource.PROFILE,
        "the phone number's country",
    ),
    AnalysisAttribute(
        "phone_line_type",
        "attributes.phoneLineType",
        "user.contact.phone_number",
        AttributeSource.PROFILE,
        "the phone number's line type (mobile, fixed line, ...)",
    ),
    AnalysisAttribute(
        "email_domain_kind",
        "attributes.emailDomainKind",
        "user.contact.email",
        AttributeSource.PROFILE,
        "the email's domain (free mail, disposable, role account, organisation)",
    ),
    AnalysisAttribute(
        "sentiment_average",
        "attributes.sentimentAverage",
        "user.behavior",
        AttributeSource.EVENTS,
        "the sentiment of the customer's feedback",
    ),
    *(
        AnalysisAttribute(
            column,
            api_name,
            "user.behavior.purchase_history",
            AttributeSource.EVENTS,
            f"purchase events: {words}",
        )
        for column, api_name, words in (
            ("rfm_recency", "rfm.r", "recency quintile"),
            ("rfm_frequency", "rfm.f", "frequency quintile"),
            ("rfm_monetary", "rfm.m", "monetary quintile"),
            ("expected_purchases_90d", "expectedPurchases90d", "BG/NBD expectation"),
            ("expected_purchases_365d", "expectedPurchases365d", "BG/NBD expectation"),
            ("p_alive", "pAlive", "BG/NBD probability of being alive"),
            ("expected_value_365d", "expectedValue365d", "BG/NBD and Gamma-Gamma value"),
            ("churn_risk", "churnRisk", "churn risk score"),
        )
    ),
)

BY_COLUMN: dict[str, AnalysisAttribute] = {a.column: a for a in ATTRIBUTES}


async def forget(customer_ids: Iterable[uuid.UUID]) -> int:
    """Delete the customers' analysis attributes (erasure, anonymization, a merge's loser)."""
    ids = list(customer_ids)
    if not ids:
        return 0
    return await CustomerAttributes.filter(customer_id__in=ids).delete()
