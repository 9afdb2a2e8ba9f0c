import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from cdlm.core.identifiers import IdentifierKind
from cdlm.core.vocabulary import LawfulBasis, LifecycleStage, SourceKind


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0003_audit_append_only")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Customer",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "lifecycle_stage",
                    fields.CharEnumField(
                        description="LEAD: lead\nPROSPECT: prospect\nACTIVE: active\nINACTIVE: inactive\nCHURNED: churned",
                        enum_type=LifecycleStage,
                        max_length=16,
                    ),
                ),
                ("profile_sealed", fields.BinaryField(description="Profile values, encrypted")),
                (
                    "present_fields",
                    fields.JSONField(
                        default=list,
                        description="Names, not values",
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "lineage",
                    fields.JSONField(
                        default=dict,
                        description="Per field: which source record supplied it",
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "source_systems",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "last_activity_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("completeness", fields.FloatField(default=0.0)),
                ("validity", fields.FloatField(default=1.0)),
                ("quality_score", fields.FloatField(default=0.0, db_index=True)),
            ],
            options={
                "table": "customers",
                "app": "cdlm",
                "indexes": [
                    Index(fields=["updated_at", "id"]),
                    Index(fields=["lifecycle_stage", "updated_at"]),
                ],
                "pk_attr": "id",
                "table_description": "One person: the surviving profile built from every source record.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="CustomerKey",
            fields=[
                (
                    "customer_id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("wrapped_key", fields.BinaryField()),
                ("provider", fields.CharField(max_length=16)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "customer_keys",
                "app": "cdlm",
                "pk_attr": "customer_id",
                "table_description": "A customer's data key, wrapped by the master key. Deleting it crypto-shreds the customer.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Event",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "cdlm.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="events",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("type", fields.CharField(max_length=64)),
                ("channel", fields.CharField(max_length=32)),
                ("occurred_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("received_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("amount", fields.DecimalField(null=True, max_digits=14, decimal_places=2)),
                ("currency", fields.CharField(null=True, max_length=3)),
                ("properties_sealed", fields.BinaryField(null=True)),
                ("source_system", fields.CharField(max_length=64)),
                ("external_id", fields.CharField(null=True, max_length=128)),
            ],
            options={
                "table": "events",
                "app": "cdlm",
                "unique_together": (("source_system", "external_id"),),
                "indexes": [
                    Index(fields=["customer_id", "occurred_at"]),
                    Index(fields=["type", "occurred_at"]),
                ],
                "pk_attr": "id",
                "table_description": "An interaction: typed, timed and channelled in clear; free-form properties encrypted.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="IdempotencyRecord",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("scope", fields.CharField(max_length=100)),
                ("key", fields.CharField(max_length=200)),
                ("fingerprint", fields.CharField(max_length=64)),
                (
                    "result",
                    fields.JSONField(
                        encoder=functools.partial(dumps, separators=(",", ":")), decoder=loads
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "idempotency_records",
                "app": "cdlm",
                "unique_together": (("scope", "key"),),
                "pk_attr": "id",
                "table_description": "The result of the first call with a key (ids and outcomes only, never personal data).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Identity",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "cdlm.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="identities",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "kind",
                    fields.CharEnumField(
                        description="EXTERNAL_ID: external_id\nEMAIL: email\nPHONE: phone",
                        enum_type=IdentifierKind,
                        max_length=16,
                    ),
                ),
                ("namespace", fields.CharField(default="", max_length=32)),
                (
                    "blind_index",
                    fields.CharField(description="HMAC of the normalized value", max_length=64),
                ),
                ("value_sealed", fields.BinaryField()),
                ("source_record_id", fields.UUIDField(null=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "identities",
                "app": "cdlm",
                "unique_together": (("kind", "namespace", "blind_index"),),
                "indexes": [Index(fields=["customer_id", "kind"])],
                "pk_attr": "id",
                "table_description": "One identifier of one customer. An identifier belongs to at most one customer.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="InvalidValue",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "cdlm.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="invalid_values",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("source_record_id", fields.UUIDField(null=True)),
                ("field", fields.CharField(max_length=64)),
                ("code", fields.CharField(max_length=32)),
                ("message", fields.CharField(max_length=200)),
                ("value_sealed", fields.BinaryField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "resolved_at",
                    fields.DatetimeField(
                        null=True,
                        description="When a valid value replaced it",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
            ],
            options={
                "table": "invalid_values",
                "app": "cdlm",
                "indexes": [
                    Index(fields=["customer_id", "resolved_at"]),
                    Index(fields=["field", "code"]),
                ],
                "pk_attr": "id",
                "table_description": "A value a source sent that failed validation and stayed out of the profile.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SourceRecord",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "customer",
                    fields.ForeignKeyField(
                        "cdlm.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="source_records",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("source_system", fields.CharField(max_length=64)),
                (
                    "source_kind",
                    fields.CharEnumField(
                        description="CRM: crm\nWEB_FORM: web_form\nSUPPORT: support\nTRANSACTION: transaction\nTHIRD_PARTY: third_party\nIMPORT: import\nSTAFF: staff",
                        enum_type=SourceKind,
                        max_length=16,
                    ),
                ),
                ("collected_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("received_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "lawful_basis",
                    fields.CharEnumField(
                        description="CONSENT: consent\nCONTRACT: contract\nLEGAL_OBLIGATION: legal_obligation\nVITAL_INTERESTS: vital_interests\nPUBLIC_TASK: public_task\nLEGITIMATE_INTERESTS: legitimate_interests",
                        enum_type=LawfulBasis,
                        max_length=24,
                    ),
                ),
                ("purpose", fields.CharField(max_length=100)),
                ("payload_sealed", fields.BinaryField()),
                ("outcome", fields.CharField(max_length=16)),
                ("matched_rule", fields.CharField(null=True, max_length=80)),
            ],
            options={
                "table": "source_records",
                "app": "cdlm",
                "indexes": [
                    Index(fields=["customer_id", "collected_at"]),
                    Index(fields=["source_system", "received_at"]),
                ],
                "pk_attr": "id",
                "table_description": "What one source sent about one customer, as received (encrypted), with provenance.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="VaultSecret",
            fields=[
                (
                    "name",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("wrapped_secret", fields.BinaryField()),
                ("provider", fields.CharField(max_length=16)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "vault_secrets",
                "app": "cdlm",
                "pk_attr": "name",
                "table_description": "An installation-wide secret (e.g. the blind-index key), wrapped by the master key.",
            },
            bases=["Model"],
        ),
    ]
