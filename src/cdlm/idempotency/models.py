"""The table of remembered results."""

from __future__ import annotations

from typing import Any

from tortoise import fields

from cdlm.core.tables import Model


class IdempotencyRecord(Model):
    """The result of the first call with a key, the key kept only as a keyed digest.

    Ids and outcomes only, never personal data.
    """

    id = fields.BigIntField(primary_key=True)
    scope = fields.CharField(max_length=100)
    key = fields.CharField(max_length=200, description="Keyed digest of the client's key")
    fingerprint = fields.CharField(max_length=64)
    result: dict[str, Any] = fields.JSONField()
    created_at = fields.DatetimeField()

    class Meta:
        table = "idempotency_records"
        unique_together = (("scope", "key"),)
