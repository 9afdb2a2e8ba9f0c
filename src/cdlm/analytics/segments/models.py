"""The table of saved segments."""

from __future__ import annotations

from typing import Any

from tortoise import fields

from cdlm.core.tables import Model


class Segment(Model):
    """A saved segment: a name and a rule over analysis attributes, stages, quality, events
    and consent. Members are never stored: they are evaluated when asked for."""

    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=200, unique=True)
    description = fields.TextField(default="")
    definition: dict[str, Any] = fields.JSONField(description="The rule (definition.to_json)")
    created_at = fields.DatetimeField()
    created_by = fields.CharField(max_length=100, description="Principal id of the creator")
    updated_at = fields.DatetimeField()
    updated_by = fields.CharField(max_length=100, description="Principal id of the last editor")

    class Meta:
        table = "segments"
        indexes = (("created_at", "id"),)
