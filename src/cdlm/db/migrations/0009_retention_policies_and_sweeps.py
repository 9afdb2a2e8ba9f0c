import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops

from cdlm.retention.models import Action, Trigger


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0008_data_subject_requests")]

    initial = False

    operations = [
        ops.CreateModel(
            name="RetentionPolicy",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("category", fields.CharField(unique=True, max_length=64)),
                ("period_days", fields.IntField()),
                (
                    "trigger",
                    fields.CharEnumField(
                        description="SINCE_COLLECTION: since_collection\nSINCE_LAST_ACTIVITY: since_last_activity\nSINCE_REQUEST_COMPLETION: since_request_completion",
                        enum_type=Trigger,
                        max_length=32,
                    ),
                ),
                (
                    "action",
                    fields.CharEnumField(
                        description="DELETE: delete\nANONYMIZE: anonymize\nARCHIVE: archive\nCRYPTO_SHRED: crypto_shred",
                        enum_type=Action,
                        max_length=16,
                    ),
                ),
                ("description", fields.CharField(default="", max_length=500)),
                ("active", fields.BooleanField(default=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "retention_policies",
                "app": "cdlm",
                "pk_attr": "id",
                "table_description": "How long one category of data is kept, and what happens then.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SweepRun",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("as_of", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("started_by_kind", fields.CharField(max_length=16)),
            ],
            options={
                "table": "retention_sweep_runs",
                "app": "cdlm",
                "pk_attr": "id",
                "table_description": "One retention sweep; ``as_of`` is fixed at its start, so a resumed run disposes of",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="SweepEvidence",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "run",
                    fields.ForeignKeyField(
                        "cdlm.SweepRun",
                        source_field="run_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="evidence",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("policy_id", fields.UUIDField()),
                ("category", fields.CharField(max_length=64)),
                (
                    "action",
                    fields.CharEnumField(
                        description="DELETE: delete\nANONYMIZE: anonymize\nARCHIVE: archive\nCRYPTO_SHRED: crypto_shred",
                        enum_type=Action,
                        max_length=16,
                    ),
                ),
                (
                    "trigger",
                    fields.CharEnumField(
                        description="SINCE_COLLECTION: since_collection\nSINCE_LAST_ACTIVITY: since_last_activity\nSINCE_REQUEST_COMPLETION: since_request_completion",
                        enum_type=Trigger,
                        max_length=32,
                    ),
                ),
                ("period_days", fields.IntField()),
                ("cutoff", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("cursor", fields.CharField(null=True, max_length=100)),
                ("batches", fields.IntField(default=0)),
                ("disposed", fields.IntField(default=0)),
                ("skipped_held", fields.IntField(default=0)),
                ("first_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("last_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("digest", fields.CharField(max_length=64)),
                (
                    "archive_objects",
                    fields.JSONField(
                        default=list,
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("done", fields.BooleanField(default=False)),
            ],
            options={
                "table": "retention_sweep_evidence",
                "app": "cdlm",
                "pk_attr": "id",
                "table_description": "What a run did under one policy: the policy as it was, counts, the time range of what",
            },
            bases=["Model"],
        ),
    ]
