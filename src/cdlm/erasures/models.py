"""Erasures committed but not yet written to the register (an outbox)."""

from __future__ import annotations

from tortoise import fields

from cdlm.core.tables import Model


class PendingErasure(Model):
    """One erasure, written in the erasure's own transaction and deleted once the register
    holds it: no committed erasure is missing from the register. Ids, action, categories and
    blind indexes only; no personal value."""

    id = fields.UUIDField(primary_key=True)
    customer_id = fields.UUIDField()
    action = fields.CharField(max_length=16, description="erasure, delete, anonymize, crypto_shred")
    request_id = fields.UUIDField(null=True, description="The erasure request, if any")
    kept: list[str] = fields.JSONField(default=list, description="Categories a legal hold kept")
    identifiers: list[list[str]] = fields.JSONField(
        default=list, description="[kind, blind index] pairs"
    )
    erased_at = fields.DatetimeField()

    class Meta:
        table = "erasure_register_pending"
