"""The table of legal holds."""

from __future__ import annotations

from tortoise import fields

from cdlm.core.tables import Model


class LegalHold(Model):
    """Data that must be kept (litigation, investigation, a legal duty): on one customer, or
    on a category of data (``events.purchase``, ``source_records``) for everyone."""

    id = fields.UUIDField(primary_key=True)
    customer_id = fields.UUIDField(null=True, db_index=True)
    category = fields.CharField(max_length=64, null=True)
    reason = fields.CharField(max_length=500)
    placed_at = fields.DatetimeField()
    placed_by_kind = fields.CharField(max_length=16)
    placed_by_id = fields.UUIDField(null=True)
    ends_at = fields.DatetimeField(null=True)
    released_at = fields.DatetimeField(null=True)
    released_by_id = fields.UUIDField(null=True)

    class Meta:
        table = "legal_holds"
