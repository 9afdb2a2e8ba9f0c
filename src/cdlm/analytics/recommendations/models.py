"""Tables of the item-to-item model: neighbours per item, popular items, and the evidence of
each build.

Nothing here names a person: rows hold item ids, similarities and counts of customers, and a
pair of items is kept only when enough customers share it (``min_customers``). The tables are
replaced as a whole by every analytics run, so an erased customer's events stop counting at
the next run.
"""

from __future__ import annotations

from tortoise import fields

from cdlm.analytics.models import AnalyticsRun
from cdlm.core.tables import Model


class ItemModel(Model):
    """The evidence of one build of the item-to-item model (one per analytics run)."""

    id = fields.UUIDField(primary_key=True)
    run: fields.ForeignKeyRelation[AnalyticsRun] = fields.ForeignKeyField(
        "cdlm.AnalyticsRun", related_name="item_models", on_delete=fields.CASCADE
    )
    as_of = fields.DatetimeField(description="Only events before it counted")
    built_at = fields.DatetimeField()
    purpose = fields.CharField(max_length=64, description="The personalization purpose's code")
    customers = fields.IntField(default=0, description="Customers whose interactions counted")
    refused = fields.IntField(
        default=0, description="Customers with interactions left out: the purpose refused them"
    )
    interactions = fields.IntField(default=0, description="Distinct (customer, item) pairs")
    items = fields.IntField(default=0, description="Items with at least one interaction")
    neighbours = fields.IntField(default=0, description="Neighbour rows written")
    note = fields.CharField(max_length=500, null=True, description="Why nothing was built")

    class Meta:
        table = "item_models"
        indexes = (("built_at",),)


class ItemNeighbour(Model):
    """One of an item's most similar items (cosine similarity of the customers' weighted
    interactions)."""

    id = fields.BigIntField(primary_key=True)
    item_id = fields.CharField(max_length=128)
    neighbour_id = fields.CharField(max_length=128)
    similarity = fields.FloatField(description="Cosine similarity, 0 to 1")
    customers = fields.IntField(description="Customers who interacted with both")
    rank = fields.SmallIntField(description="1: the most similar")

    class Meta:
        table = "item_neighbours"
        unique_together = (("item_id", "rank"),)


class PopularItem(Model):
    """One of the most popular items: the cold-start answer."""

    item_id = fields.CharField(max_length=128, primary_key=True)
    score = fields.FloatField(description="Sum of the customers' interaction weights")
    customers = fields.IntField(description="Customers who interacted with it")
    rank = fields.IntField(unique=True, description="1: the most popular")

    class Meta:
        table = "popular_items"
