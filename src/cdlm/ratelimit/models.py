"""Counter table of the rate limiter."""

from __future__ import annotations

from tortoise import fields

from cdlm.core.tables import Model


class RateLimitCounter(Model):
    """How many attempts a key made in one window. Keys are keyed digests, never raw values."""

    id = fields.BigIntField(primary_key=True)
    key_digest = fields.CharField(max_length=64)
    window_start = fields.DatetimeField()
    count = fields.IntField(default=0)

    class Meta:
        table = "rate_limit_counters"
        unique_together = (("key_digest", "window_start"),)
