"""Tables of customers, the source records they were built from, and interaction events.

Personal values live only in the ``*_sealed`` columns, encrypted under the customer's data key.
Everything else (types, channels, times, amounts, field names, lineage) is non-personal and
stays queryable.
"""

from __future__ import annotations

from tortoise import fields

from cdlm.core.tables import Model
from cdlm.core.vocabulary import LawfulBasis, LifecycleStage, SourceKind


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
    """An interaction: typed, timed and channelled in clear; free-form properties encrypted."""

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

    class Meta:
        table = "events"
        indexes = (("customer_id", "occurred_at"), ("type", "occurred_at"))
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
