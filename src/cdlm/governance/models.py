"""Who owns and who stewards each data category of the data map, with the history of it."""

from __future__ import annotations

from tortoise import fields

from cdlm.core.tables import Model


class DataOwnership(Model):
    """One assignment of an owner and a steward to a data category.

    The current assignment has no ``ended_at``; reassigning ends it and adds the next one, so
    the rows are the category's history."""

    id = fields.UUIDField(primary_key=True)
    category = fields.CharField(max_length=100, description="Data category (fideslang key)")
    owner_id = fields.UUIDField(description="Staff user accountable for the category")
    steward_id = fields.UUIDField(description="Staff user who looks after its quality")
    assigned_at = fields.DatetimeField()
    assigned_by_kind = fields.CharField(max_length=16)
    assigned_by_id = fields.UUIDField(null=True)
    ended_at = fields.DatetimeField(null=True, description="When a reassignment replaced it")

    class Meta:
        table = "data_ownership"
        indexes = (("category", "ended_at"), ("steward_id", "ended_at"))
