"""Tables of staff users, their sessions, and API keys."""

from __future__ import annotations

from tortoise import fields

from cdlm.core.roles import Role
from cdlm.core.tables import Model


class StaffUser(Model):
    """A person who signs in to work with cdlm."""

    id = fields.UUIDField(primary_key=True)
    email = fields.CharField(max_length=320, unique=True, description="Lower-cased login email")
    display_name = fields.CharField(max_length=200)
    role = fields.CharEnumField(Role, max_length=32)
    password_hash = fields.CharField(max_length=256)
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    password_changed_at = fields.DatetimeField()
    last_login_at = fields.DatetimeField(null=True)

    class Meta:
        table = "staff_users"


class StaffSession(Model):
    """A signed-in session; its id is in the access token, so revoking it ends the token."""

    id = fields.UUIDField(primary_key=True)
    user: fields.ForeignKeyRelation[StaffUser] = fields.ForeignKeyField(
        "cdlm.StaffUser", related_name="sessions", on_delete=fields.CASCADE
    )
    created_at = fields.DatetimeField()
    expires_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "staff_sessions"
        indexes = (("user_id", "revoked_at"),)


class ApiKey(Model):
    """A key for a machine or frontend: ``cdlm_<key_id>_<secret>``; only a hash is stored."""

    id = fields.UUIDField(primary_key=True)
    key_id = fields.CharField(max_length=32, unique=True)
    name = fields.CharField(max_length=200)
    role = fields.CharEnumField(Role, max_length=32)
    secret_hash = fields.CharField(max_length=256)
    created_at = fields.DatetimeField()
    created_by_kind = fields.CharField(max_length=16)
    created_by_id = fields.UUIDField(null=True)
    expires_at = fields.DatetimeField(null=True)
    last_used_at = fields.DatetimeField(null=True)
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_keys"


class StaffTraining(Model):
    """A privacy training a staff user completed, and until when it counts as current."""

    id = fields.UUIDField(primary_key=True)
    user: fields.ForeignKeyRelation[StaffUser] = fields.ForeignKeyField(
        "cdlm.StaffUser", related_name="trainings", on_delete=fields.CASCADE
    )
    course = fields.CharField(max_length=200)
    completed_at = fields.DatetimeField()
    valid_until = fields.DatetimeField()
    recorded_at = fields.DatetimeField()

    class Meta:
        table = "staff_trainings"
        indexes = (("user_id", "valid_until"),)
