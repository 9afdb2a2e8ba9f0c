import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from cdlm.consent.models import Decision, Mechanism, Method
from cdlm.core.vocabulary import LawfulBasis

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION cdlm_consent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'consent_entries is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER consent_entries_append_only
    BEFORE UPDATE OR DELETE ON consent_entries
    FOR EACH ROW EXECUTE FUNCTION cdlm_consent_append_only();
"""
DROP_APPEND_ONLY = """
DROP TRIGGER IF EXISTS consent_entries_append_only ON consent_entries;
DROP FUNCTION IF EXISTS cdlm_consent_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0005_import_runs")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Purpose",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("code", fields.CharField(unique=True, max_length=64)),
                ("name", fields.CharField(max_length=200)),
                ("description", fields.TextField(unique=False)),
                (
                    "lawful_basis",
                    fields.CharEnumField(
                        description="CONSENT: consent\nCONTRACT: contract\nLEGAL_OBLIGATION: legal_obligation\nVITAL_INTERESTS: vital_interests\nPUBLIC_TASK: public_task\nLEGITIMATE_INTERESTS: legitimate_interests",
                        enum_type=LawfulBasis,
                        max_length=24,
                    ),
                ),
                (
                    "mechanism",
                    fields.CharEnumField(
                        description="OPT_IN: opt_in\nOPT_OUT: opt_out\nNOTICE_ONLY: notice_only",
                        enum_type=Mechanism,
                        max_length=16,
                    ),
                ),
                (
                    "data_use",
                    fields.CharField(description="fideslang data use key", max_length=100),
                ),
                (
                    "data_categories",
                    fields.JSONField(
                        default=list,
                        description="fideslang keys",
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("sale_or_sharing", fields.BooleanField(default=False)),
                ("current_version", fields.IntField(default=1)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "purposes",
                "app": "cdlm",
                "pk_attr": "id",
                "table_description": "Why customer data is used; managed by privacy officers.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ConsentEntry",
            fields=[
                (
                    "sequence",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("id", fields.UUIDField(unique=True)),
                ("customer_id", fields.UUIDField()),
                (
                    "purpose",
                    fields.ForeignKeyField(
                        "cdlm.Purpose",
                        source_field="purpose_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="entries",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "decision",
                    fields.CharEnumField(
                        description="GRANTED: granted\nDENIED: denied\nWITHDRAWN: withdrawn",
                        enum_type=Decision,
                        max_length=16,
                    ),
                ),
                ("notice_version", fields.IntField(null=True)),
                (
                    "method",
                    fields.CharEnumField(
                        description="FORM: form\nAPI: api\nIMPORT: import\nGPC: gpc\nAGENT: agent",
                        enum_type=Method,
                        max_length=16,
                    ),
                ),
                ("channel", fields.CharField(max_length=32)),
                ("decided_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("recorded_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "evidence_sealed",
                    fields.BinaryField(null=True, description="User agent, keyed IP digest"),
                ),
                ("actor_kind", fields.CharField(max_length=16)),
                ("actor_id", fields.UUIDField(null=True)),
                ("prev_hash", fields.CharField(max_length=64)),
                ("hash", fields.CharField(unique=True, max_length=64)),
            ],
            options={
                "table": "consent_entries",
                "app": "cdlm",
                "indexes": [Index(fields=["customer_id", "purpose_id", "sequence"])],
                "pk_attr": "sequence",
                "table_description": "One decision, appended to the ledger; ``hash`` chains it to the previous entry.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PurposeNotice",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "purpose",
                    fields.ForeignKeyField(
                        "cdlm.Purpose",
                        source_field="purpose_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="notices",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("version", fields.IntField()),
                ("text", fields.TextField(unique=False)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "purpose_notices",
                "app": "cdlm",
                "unique_together": (("purpose_id", "version"),),
                "pk_attr": "id",
                "table_description": "One version of a purpose's notice text; versions are never changed or removed.",
            },
            bases=["Model"],
        ),
        ops.RunSQL(APPEND_ONLY, reverse_sql=DROP_APPEND_ONLY),
    ]
