"""A table used only by tests of the shared helpers (pagination, error mapping)."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class Widget(Model):
    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=64, unique=True)
    rank = fields.IntField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "test_widget"
