"""Tables of insight: the quality snapshots the daily analytics run keeps.

A snapshot holds aggregates of the whole population only (counts, shares, a score histogram):
nothing about any one person.
"""

from __future__ import annotations

from typing import Any

from tortoise import fields

from cdlm.core.tables import Model


class QualitySnapshot(Model):
    """The quality of the customer data at one moment, as an analytics run read it: what the
    dashboard cannot rebuild for the past (scores, completeness and refused values are kept
    only as they are now)."""

    id = fields.UUIDField(primary_key=True)
    taken_at = fields.DatetimeField(db_index=True, description="When the figures were read")
    run_id = fields.UUIDField(null=True, description="The analytics run that took it")
    customers = fields.IntField(description="Customers counted (not restricted/erased/merged)")
    average_score = fields.FloatField(null=True, description="Mean quality score, 0 to 1")
    score_buckets: list[list[Any]] = fields.JSONField(
        description="[from, to, customers] per fifth of the score range"
    )
    field_presence: dict[str, int] = fields.JSONField(
        description="Profile field name -> customers with a value for it"
    )
    open_refused: list[list[Any]] = fields.JSONField(
        description="[source system or null, open refused values] per source"
    )

    class Meta:
        table = "quality_snapshots"
