"""The audit trail table."""

from __future__ import annotations

from tortoise import fields
from tortoise.models import Model


class AuditEntry(Model):
    """One audited action. Rows are only ever inserted; ``hash`` chains each to the previous."""

    sequence = fields.BigIntField(primary_key=True)
    id = fields.UUIDField(unique=True)
    occurred_at = fields.DatetimeField()
    actor_kind = fields.CharField(max_length=16)
    actor_id = fields.UUIDField(null=True)
    actor_role = fields.CharField(max_length=32, null=True)
    action = fields.CharField(max_length=100)
    target_type = fields.CharField(max_length=64, null=True)
    target_id = fields.CharField(max_length=200, null=True)
    fields_touched: list[str] = fields.JSONField(
        default=list, description="Names of personal fields"
    )
    request_id = fields.CharField(max_length=128, null=True)
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64, unique=True)

    class Meta:
        table = "audit_entries"
        indexes = (
            ("actor_id", "sequence"),
            ("target_type", "target_id", "sequence"),
            ("action", "sequence"),
            ("occurred_at",),
        )
