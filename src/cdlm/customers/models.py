"""Tables of customers, the source records they were built from, and interaction events.

Personal values live only in the ``*_sealed`` columns, encrypted under the customer's data key.
Everything else (types, channels, times, amounts, field names, lineage) is non-personal and
stays queryable.
"""

from __future__ import annotations

from typing import Final

from tortoise import fields

from cdlm.core.tables import Model
from cdlm.core.vocabulary import LawfulBasis, LifecycleStage, SourceKind

# The customers analysis may count, as SQL over ``customers`` aliased ``c``: restricted,
# erased and merged-away customers never are.
ANALYSABLE: Final = "c.erased_at IS NULL AND c.restricted_at IS NULL AND c.merged_into_id IS NULL"


class Customer(Model):
    """One person: the surviving profile built from every source record."""

    id = fields.UUIDField(primary_key=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    lifecycle_stage = fields.CharEnumField(LifecycleStage, max_length=16)
    profile_sealed = fields.BinaryField(description="Profile values, encrypted")
    present_fields: list[str] = fields.JSONField(default=list, description="Names, not values")
    lineage: dict[str, dict[str, str | int]] = fields.JSONField(
        default=dict, description="Per field: which source record supplied it"
    )
    source_systems: list[str] = fields.JSONField(default=list)
    last_activity_at = fields.DatetimeField(null=True)
    completeness = fields.FloatField(default=0.0)
    validity = fields.FloatField(default=1.0)
    quality_score = fields.FloatField(default=0.0, db_index=True)
    restricted_at = fields.DatetimeField(
        null=True, description="Processing restricted (GDPR Art. 18): stored, not processed"
    )
    erased_at = fields.DatetimeField(
        null=True, description="Erased; what remains is kept under a legal hold, restricted"
    )
    merged_into_id = fields.UUIDField(
        null=True, db_index=True, description="Merged: this id now answers with that profile"
    )

    class Meta:
        table = "customers"
        indexes = (("updated_at", "id"), ("lifecycle_stage", "updated_at"))


class SourceRecord(Model):
    """What one source sent about one customer, as received (encrypted), with provenance."""

    id = fields.UUIDField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "cdlm.Customer", related_name="source_records", on_delete=fields.CASCADE
    )
    source_system = fields.CharField(max_length=64)
    source_kind = fields.CharEnumField(SourceKind, max_length=16)
    collected_at = fields.DatetimeField()
    received_at = fields.DatetimeField()
    lawful_basis = fields.CharEnumField(LawfulBasis, max_length=24)
    purpose = fields.CharField(max_length=100)
    payload_sealed = fields.BinaryField()
    outcome = fields.CharField(max_length=16)
    matched_rule = fields.CharField(max_length=80, null=True)

    class Meta:
        table = "source_records"
        indexes = (("customer_id", "collected_at"), ("source_system", "received_at"))


class Event(Model):
    """An interaction: typed, timed and channelled in clear; free-form properties encrypted.

    The table is partitioned by month of ``occurred_at`` (UTC), with a default partition for
    moments no month covers (:mod:`cdlm.customers.partitions`); its primary key in PostgreSQL
    is (id, occurred_at). A source's external id is unique across every month through
    :class:`EventKey`, kept by a trigger.
    """

    id = fields.UUIDField(primary_key=True)
    customer: fields.ForeignKeyRelation[Customer] = fields.ForeignKeyField(
        "cdlm.Customer", related_name="events", on_delete=fields.CASCADE
    )
    type = fields.CharField(max_length=64)
    channel = fields.CharField(max_length=32)
    occurred_at = fields.DatetimeField()
    received_at = fields.DatetimeField()
    amount = fields.DecimalField(max_digits=14, decimal_places=2, null=True)
    currency = fields.CharField(max_length=3, null=True)
    properties_sealed = fields.BinaryField(null=True)
    source_system = fields.CharField(max_length=64)
    external_id = fields.CharField(max_length=128, null=True)
    sentiment = fields.FloatField(
        null=True, description="Feedback: VADER compound score of the sealed text, -1 to 1"
    )
    nps = fields.SmallIntField(null=True, description="Feedback: Net Promoter answer, 0-10")
    csat = fields.SmallIntField(null=True, description="Feedback: satisfaction answer, 1-5")
    item_id = fields.CharField(
        max_length=128, null=True, description="Product or content id read from the properties"
    )

    class Meta:
        table = "events"
        indexes = (
            ("customer_id", "occurred_at"),
            ("type", "occurred_at"),
            # A customer's first event of a type after a moment, in one descent (funnels, paths).
            ("customer_id", "type", "occurred_at", "id"),
        )


class EventKey(Model):
    """The source ids of events, each (source system, external id) once across all months.

    A partitioned table can only enforce keys that include its partition key, so this table
    keeps them. Written and deleted by a trigger on ``events`` only; the application reads it.
    """

    event_id = fields.UUIDField(primary_key=True)
    source_system = fields.CharField(max_length=64)
    external_id = fields.CharField(max_length=128)

    class Meta:
        table = "event_keys"
        unique_together = (("source_system", "external_id"),)


class ImportRun(Model):
    """Progress of one file import, committed with each batch so a rerun resumes exactly."""

    id = fields.UUIDField(primary_key=True)
    file_digest = fields.CharField(max_length=64, unique=True)
    file_name = fields.CharField(max_length=255)
    source_system = fields.CharField(max_length=64)
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    last_line = fields.IntField(default=0)
    created = fields.IntField(default=0)
    matched = fields.IntField(default=0)
    rejected = fields.IntField(default=0)

    class Meta:
        table = "import_runs"


class CustomerAttributes(Model):
    """Coarse attributes derived from a customer's data and kept in clear for analysis.

    Nothing here is a personal value: each is a category (a country, an age band, a kind of
    email domain) or a score, declared on the data map, derived again whenever the values
    behind it change, and deleted with the customer. Analysts see these, never the values.
    """

    id = fields.BigIntField(primary_key=True)
    customer: fields.OneToOneRelation[Customer] = fields.OneToOneField(
        "cdlm.Customer", related_name="attributes", on_delete=fields.CASCADE
    )
    country = fields.CharField(max_length=2, null=True, description="ISO 3166-1 alpha-2")
    region = fields.CharField(max_length=64, null=True, description="Region of the address")
    age_band = fields.CharField(max_length=8, null=True, description="E.g. 25-34")
    acquisition_source = fields.CharField(
        max_length=64, null=True, description="The system of the first source record"
    )
    phone_country = fields.CharField(max_length=2, null=True)
    phone_line_type = fields.CharField(max_length=32, null=True)
    email_domain_kind = fields.CharField(max_length=32, null=True)
    sentiment_average = fields.FloatField(null=True)
    rfm_recency = fields.SmallIntField(null=True, description="Quintile 1-5, 5 most recent")
    rfm_frequency = fields.SmallIntField(null=True)
    rfm_monetary = fields.SmallIntField(null=True)
    expected_purchases_90d = fields.FloatField(null=True)
    expected_purchases_365d = fields.FloatField(null=True)
    p_alive = fields.FloatField(null=True)
    expected_value_365d = fields.DecimalField(max_digits=14, decimal_places=2, null=True)
    churn_risk = fields.FloatField(null=True)
    derivation: dict[str, str] = fields.JSONField(
        default=dict, description="Per attribute: the enricher (name@version) behind it"
    )
    derived_at = fields.DatetimeField(
        null=True, description="When the profile attributes were derived; null: not yet"
    )
    scored_at = fields.DatetimeField(null=True, description="As-of date of the scores")

    class Meta:
        table = "customer_attributes"
        indexes = (("country", "age_band"), ("churn_risk",))
