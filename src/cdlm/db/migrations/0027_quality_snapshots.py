from uuid import uuid4

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0026_event_type_per_customer")]

    initial = False

    operations = [
        ops.CreateModel(
            name="QualitySnapshot",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "taken_at",
                    fields.DatetimeField(
                        db_index=True,
                        description="When the figures were read",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
                (
                    "run_id",
                    fields.UUIDField(null=True, description="The analytics run that took it"),
                ),
                (
                    "customers",
                    fields.IntField(description="Customers counted (not restricted/erased/merged)"),
                ),
                (
                    "average_score",
                    fields.FloatField(null=True, description="Mean quality score, 0 to 1"),
                ),
                (
                    "score_buckets",
                    fields.JSONField(
                        description="[from, to, customers] per fifth of the score range",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                (
                    "field_presence",
                    fields.JSONField(
                        description="Profile field name -> customers with a value for it",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                (
                    "open_refused",
                    fields.JSONField(
                        description="[source system or null, open refused values] per source",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
            ],
            options={
                "table": "quality_snapshots",
                "app": "cdlm",
                "pk_attr": "id",
                "table_description": "The quality of the customer data at one moment, as an analytics run read it: what the",
            },
            bases=["Model"],
        ),
    ]
