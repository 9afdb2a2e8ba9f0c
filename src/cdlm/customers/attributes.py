"""Analysis attributes: the coarse values kept in clear per customer (``customer_attributes``).

Personal values stay sealed; analysis (segments, scores, dashboards) works on these instead.
:data:`ATTRIBUTES` is the one table of them: each names its column, the API name under
``Customer.analytics``, its fideslang data category for the data map and what it is
derived from. Profile attributes are derived again whenever the profile changes; scores are
written by analytics runs; the sentiment average when feedback arrives (and by every analytics
run); all of them are deleted with the customer (:func:`forget`).
"""

from __future__ import annotations

import functools
import json
import os
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum

from tortoise.connection import get_connection

from cdlm.config import ConfigError
from cdlm.customers.models import Customer, CustomerAttributes
from cdlm.quality.enrich.base import Attribute
from cdlm.quality.enrich.registry import SETTING, EnricherSettingError, enrich, parse_enabled
from cdlm.vault import purposes as sealed_for
from cdlm.vault.service import Vault


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


#: Enricher attribute → the column it fills (a source value of the same column outranks it).
_ENRICHED_COLUMNS: Mapping[Attribute, str] = {
    Attribute.PHONE_COUNTRY: "phone_country",
    Attribute.PHONE_LINE_TYPE: "phone_line_type",
    Attribute.EMAIL_DOMAIN_KIND: "email_domain_kind",
    Attribute.AGE_BAND: "age_band",
    Attribute.POSTAL_REGION: "region",
}
#: Columns a profile value fills as it is (already validated and normalized on the way in).
_SOURCE_COLUMNS: Mapping[str, str] = {"country": "country", "region": "region"}
PROFILE_COLUMNS: tuple[str, ...] = tuple(
    a.column for a in ATTRIBUTES if a.source is not AttributeSource.EVENTS
)


@dataclass(frozen=True)
class ProfileAttributes:
    """The profile-derived attributes of one customer and where each came from."""

    values: Mapping[str, str | None]
    derivation: Mapping[str, str]


@functools.cache
def enabled_enrichers() -> frozenset[str]:
    """The enrichers ``CDLM_ENRICHERS`` enables (read once per process; see
    :func:`check_enrichers`)."""
    return parse_enabled(os.environ.get(SETTING))


def check_enrichers() -> frozenset[str]:
    """:func:`enabled_enrichers`, with a bad setting raised as a :class:`ConfigError` so the
    server or command does not start with it."""
    try:
        return enabled_enrichers()
    except EnricherSettingError as error:
        raise ConfigError(error.variable, error.problem) from None


def derive(
    profile: Mapping[str, str],
    source_systems: Sequence[str],
    as_of: date,
    enabled: frozenset[str] | None = None,
) -> ProfileAttributes:
    """The attributes of a profile as of ``as_of``: source values first, enrichers fill the
    rest (an enricher never outranks a source value). The acquisition source is the first of
    ``source_systems`` when the customer has none yet. Pure: nothing here leaves memory."""
    values: dict[str, str | None] = dict.fromkeys(PROFILE_COLUMNS)
    derivation: dict[str, str] = {}
    for field, column in _SOURCE_COLUMNS.items():
        if profile.get(field):
            values[column] = profile[field]
            derivation[column] = f"profile.{field}"
    if source_systems:
        values["acquisition_source"] = source_systems[0]
        derivation["acquisition_source"] = "sources"
    chosen = enabled_enrichers() if enabled is None else enabled
    for attribute, found in enrich(profile, as_of=as_of, enabled=chosen).items():
        target = _ENRICHED_COLUMNS.get(attribute)
        if target is not None and values[target] is None:
            values[target] = found.value
            derivation[target] = found.provenance
    return ProfileAttributes(values, derivation)


_UPSERT = (
    "INSERT INTO customer_attributes (customer_id, {columns}, derivation, derived_at) "
    "SELECT * FROM unnest($1::uuid[], {arrays}, $%(d)d::jsonb[], $%(t)d::timestamptz[]) "
    "ON CONFLICT (customer_id) DO UPDATE SET {updates}, derivation = EXCLUDED.derivation, "
    "derived_at = EXCLUDED.derived_at"
)


def _upsert_statement() -> str:
    """The upsert of the profile columns (built once, from :data:`ATTRIBUTES`)."""
    columns = PROFILE_COLUMNS
    arrays = ", ".join(f"${n}::text[]" for n in range(2, len(columns) + 2))
    # The acquisition source is the first system ever seen: once known it stays.
    updates = ", ".join(
        f"{c} = COALESCE(customer_attributes.{c}, EXCLUDED.{c})"
        if c == "acquisition_source"
        else f"{c} = EXCLUDED.{c}"
        for c in columns
    )
    statement = _UPSERT.format(columns=", ".join(columns), arrays=arrays, updates=updates)
    return statement % {"d": len(columns) + 2, "t": len(columns) + 3}


_UPSERT_PROFILE = _upsert_statement()


async def refresh(rows: Sequence[tuple[uuid.UUID, ProfileAttributes]], now: datetime) -> None:
    """Store the profile attributes of these customers (one statement; scores are kept)."""
    if not rows:
        return
    arguments: list[object] = [[customer_id for customer_id, _ in rows]]
    arguments += [[derived.values[c] for _, derived in rows] for c in PROFILE_COLUMNS]
    arguments.append([json.dumps(dict(derived.derivation)) for _, derived in rows])
    arguments.append([now] * len(rows))
    await get_connection("default").execute_query(_UPSERT_PROFILE, arguments)


#: Each customer's mean sentiment over their scored feedback events, computed again from the
#: events' clear column (exact, never a drifting running mean). Restricted, erased and
#: merged-away customers get none, as in analytics runs.
_SENTIMENT_AVERAGES = """
WITH averages AS (
    SELECT c.id AS customer_id,
           (SELECT avg(e.sentiment) FROM events e
            WHERE e.customer_id = c.id AND e.sentiment IS NOT NULL) AS average
    FROM customers c
    WHERE c.id = ANY($1::uuid[]) AND c.erased_at IS NULL AND c.restricted_at IS NULL
      AND c.merged_into_id IS NULL
)
INSERT INTO customer_attributes AS a (customer_id, sentiment_average, derivation)
SELECT customer_id, average, '{}'::jsonb FROM averages WHERE average IS NOT NULL
ON CONFLICT (customer_id) DO UPDATE SET sentiment_average = EXCLUDED.sentiment_average
"""
#: Every customer's sentiment average again (analytics runs): events moved by a merge or an
#: unmerge, or removed by retention, and customers restricted since, are caught up.
_ALL_SENTIMENT_AVERAGES = """
WITH averages AS (
    SELECT e.customer_id, avg(e.sentiment) AS average
    FROM events e JOIN customers c ON c.id = e.customer_id
    WHERE e.sentiment IS NOT NULL AND c.erased_at IS NULL AND c.restricted_at IS NULL
      AND c.merged_into_id IS NULL
    GROUP BY e.customer_id
), written AS (
    INSERT INTO customer_attributes AS a (customer_id, sentiment_average, derivation)
    SELECT customer_id, average, '{}'::jsonb FROM averages
    ON CONFLICT (customer_id) DO UPDATE SET sentiment_average = EXCLUDED.sentiment_average
    WHERE a.sentiment_average IS DISTINCT FROM EXCLUDED.sentiment_average
    RETURNING 1
)
UPDATE customer_attributes SET sentiment_average = NULL
WHERE sentiment_average IS NOT NULL
  AND customer_id NOT IN (SELECT customer_id FROM averages)
"""


async def refresh_sentiment(customer_ids: Iterable[uuid.UUID]) -> None:
    """Compute these customers' sentiment average again from their events (one statement,
    in the caller's transaction, after their new feedback events are written)."""
    ids = sorted(set(customer_ids))
    if ids:
        await get_connection("default").execute_query(_SENTIMENT_AVERAGES, [ids])


async def refresh_all_sentiment() -> None:
    """Every customer's sentiment average again (one statement; see analytics runs)."""
    await get_connection("default").execute_query(_ALL_SENTIMENT_AVERAGES, [])


@dataclass(frozen=True)
class DerivationReport:
    """What deriving every customer's attributes again did."""

    customers: int
    enabled: frozenset[str]


async def derive_all(
    vault: Vault, now: datetime, *, batch: int = 500, enabled: frozenset[str] | None = None
) -> DerivationReport:
    """Derive every live customer's profile attributes again (``cdlm enrich --all``), in
    batches: profiles are opened in memory only. Attributes of enrichers no longer enabled
    are cleared (a source value stays), so disabling an enricher and running this removes
    what it derived."""
    await vault.ready()
    chosen = enabled_enrichers() if enabled is None else enabled
    done = 0
    after: uuid.UUID | None = None
    while True:
        rows = Customer.filter(erased_at__isnull=True, merged_into_id__isnull=True)
        if after is not None:
            rows = rows.filter(id__gt=after)
        page = await rows.order_by("id").limit(batch)
        if not page:
            return DerivationReport(done, chosen)
        keys = await vault.customer_keys(c.id for c in page)
        derived = [
            (
                c.id,
                derive(
                    vault.open(keys[c.id], c.id, sealed_for.PROFILE, c.profile_sealed),
                    c.source_systems,
                    now.date(),
                    chosen,
                ),
            )
            for c in page
            if c.id in keys and c.profile_sealed
        ]
        await refresh(derived, now)
        done += len(derived)
        after = page[-1].id


async def values_of(customer_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, dict[str, object]]:
    """Each customer's analysis attributes (column -> value; None when not derived), one
    query; customers never derived are absent."""
    wanted = list(set(customer_ids))
    if not wanted:
        return {}
    rows = await CustomerAttributes.filter(customer_id__in=wanted)
    return {
        row.customer_id: {a.column: getattr(row, a.column) for a in ATTRIBUTES}  # type: ignore[attr-defined]
        for row in rows
    }


async def document_of(customer_id: uuid.UUID) -> dict[str, object] | None:
    """The customer's analysis attributes as their access copy shows them (None: never
    derived): each value with where it came from, and when it was derived or scored."""
    row = await CustomerAttributes.get_or_none(customer_id=customer_id)
    if row is None:
        return None
    values = {a.column: getattr(row, a.column) for a in ATTRIBUTES}
    return {
        "attributes": {
            column: str(value) if isinstance(value, Decimal) else value
            for column, value in values.items()
        },
        "derived_from": dict(row.derivation),
        "derived_at": row.derived_at.isoformat() if row.derived_at else None,
        "scored_at": row.scored_at.isoformat() if row.scored_at else None,
    }
