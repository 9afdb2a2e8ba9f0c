from uuid import uuid4

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0020_analytics_runs")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Segment",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("name", fields.CharField(unique=True, max_length=200)),
                ("description", fields.TextField(default="", unique=False)),
                (
                    "definition",
                    fields.JSONField(
                        description="The rule (definition.to_json)",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "created_by",
                    fields.CharField(description="Principal id of the creator", max_length=100),
                ),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "updated_by",
                    fields.CharField(description="Principal id of the last editor", max_length=100),
                ),
            ],
            options={
                "table": "segments",
                "app": "cdlm",
                "indexes": [Index(fields=["created_at", "id"])],
                "pk_attr": "id",
                "table_description": "A saved segment: a name and a rule over analysis attributes, stages, quality, events",
            },
            bases=["Model"],
        ),
    ]
