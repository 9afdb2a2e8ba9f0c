from uuid import uuid4

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0027_quality_snapshots")]

    initial = False

    operations = [
        ops.CreateModel(
            name="PendingErasure",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("customer_id", fields.UUIDField()),
                (
                    "action",
                    fields.CharField(
                        description="erasure, delete, anonymize, crypto_shred", max_length=16
                    ),
                ),
                (
                    "request_id",
                    fields.UUIDField(null=True, description="The erasure request, if any"),
                ),
                (
                    "kept",
                    fields.JSONField(
                        default=list,
                        description="Categories a legal hold kept",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                (
                    "identifiers",
                    fields.JSONField(
                        default=list,
                        description="[kind, blind index] pairs",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                ("erased_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "erasure_register_pending",
                "app": "cdlm",
                "pk_attr": "id",
                "table_description": "One erasure, written in the erasure's own transaction and deleted once the register",
            },
            bases=["Model"],
        ),
    ]
