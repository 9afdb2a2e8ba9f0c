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


class SegmentExport(Model):
    """One export of a segment's members for a purpose: what was written (counts, fields) and
    the file itself, sealed under a key of its own until its download link stops working."""

    id = fields.UUIDField(primary_key=True)
    segment: fields.ForeignKeyRelation[Segment] = fields.ForeignKeyField(
        "cdlm.Segment", related_name="exports", on_delete=fields.RESTRICT
    )
    purpose_code = fields.CharField(max_length=64, db_index=True)
    format = fields.CharField(max_length=16, description="csv or json_lines")
    created_at = fields.DatetimeField()
    created_by = fields.CharField(max_length=100, description="Principal id of the exporter")
    members_evaluated = fields.IntField(description="Members of the segment at export time")
    members_exported = fields.IntField()
    left_out_for_consent = fields.IntField(description="Members the purpose may not process")
    exported_fields: list[str] = fields.JSONField(description="Columns of the file, in order")
    content_sealed = fields.BinaryField(null=True, description="The file, sealed")
    size_bytes = fields.IntField()
    sha256 = fields.CharField(max_length=64)

    class Meta:
        table = "segment_exports"
        indexes = (("created_at", "id"),)
