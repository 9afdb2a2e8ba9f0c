from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0023_feedback_sentiment")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ItemModel",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "run",
                    fields.ForeignKeyField(
                        "cdlm.AnalyticsRun",
                        source_field="run_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="item_models",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "as_of",
                    fields.DatetimeField(
                        description="Only events before it counted",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
                ("built_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "purpose",
                    fields.CharField(
                        description="The personalization purpose's code", max_length=64
                    ),
                ),
                (
                    "customers",
                    fields.IntField(default=0, description="Customers whose interactions counted"),
                ),
                (
                    "refused",
                    fields.IntField(
                        default=0,
                        description="Customers with interactions left out: the purpose refused them",
                    ),
                ),
                (
                    "interactions",
                    fields.IntField(default=0, description="Distinct (customer, item) pairs"),
                ),
                (
                    "items",
                    fields.IntField(default=0, description="Items with at least one interaction"),
                ),
                ("neighbours", fields.IntField(default=0, description="Neighbour rows written")),
                (
                    "note",
                    fields.CharField(
                        null=True, description="Why nothing was built", max_length=500
                    ),
                ),
            ],
            options={
                "table": "item_models",
                "app": "cdlm",
                "indexes": [Index(fields=["built_at"])],
                "pk_attr": "id",
                "table_description": "The evidence of one build of the item-to-item model (one per analytics run).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ItemNeighbour",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("item_id", fields.CharField(max_length=128)),
                ("neighbour_id", fields.CharField(max_length=128)),
                ("similarity", fields.FloatField(description="Cosine similarity, 0 to 1")),
                ("customers", fields.IntField(description="Customers who interacted with both")),
                ("rank", fields.SmallIntField(description="1: the most similar")),
            ],
            options={
                "table": "item_neighbours",
                "app": "cdlm",
                "unique_together": (("item_id", "rank"),),
                "pk_attr": "id",
                "table_description": "One of an item's most similar items (cosine similarity of the customers' weighted",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PopularItem",
            fields=[
                (
                    "item_id",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=128),
                ),
                (
                    "score",
                    fields.FloatField(description="Sum of the customers' interaction weights"),
                ),
                ("customers", fields.IntField(description="Customers who interacted with it")),
                ("rank", fields.IntField(unique=True, description="1: the most popular")),
            ],
            options={
                "table": "popular_items",
                "app": "cdlm",
                "pk_attr": "item_id",
                "table_description": "One of the most popular items: the cold-start answer.",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Event",
            name="item_id",
            field=fields.CharField(
                null=True,
                description="Product or content id read from the properties",
                max_length=128,
            ),
        ),
    ]
