"""Tables describing the installation."""

from __future__ import annotations

from tortoise import fields

from cdlm.core.tables import Model


class Installation(Model):
    """The one row describing this installation, written when its database is first prepared."""

    id = fields.UUIDField(primary_key=True)
    singleton = fields.BooleanField(default=True, unique=True)
    installed_at = fields.DatetimeField()
    installed_version = fields.CharField(max_length=32)

    class Meta:
        table = "installation"
