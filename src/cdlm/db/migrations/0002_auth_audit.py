import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from cdlm.core.roles import Role


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0001_initial")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ApiKey",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("key_id", fields.CharField(unique=True, max_length=32)),
                ("name", fields.CharField(max_length=200)),
                (
                    "role",
                    fields.CharEnumField(
                        description="ADMIN: admin\nPRIVACY_OFFICER: privacy_officer\nSTEWARD: steward\nANALYST: analyst\nAGENT: agent\nINGEST: ingest",
                        enum_type=Role,
                        max_length=32,
                    ),
                ),
                ("secret_hash", fields.CharField(max_length=256)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("created_by_kind", fields.CharField(max_length=16)),
                ("created_by_id", fields.UUIDField(null=True)),
                ("expires_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                (
                    "last_used_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "api_keys",
                "app": "cdlm",
                "pk_attr": "id",
                "table_description": "A key for a machine or frontend: ``cdlm_<key_id>_<secret>``; only a hash is stored.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="AuditEntry",
            fields=[
                (
                    "sequence",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("id", fields.UUIDField(unique=True)),
                ("occurred_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("actor_kind", fields.CharField(max_length=16)),
                ("actor_id", fields.UUIDField(null=True)),
                ("actor_role", fields.CharField(null=True, max_length=32)),
                ("action", fields.CharField(max_length=100)),
                ("target_type", fields.CharField(null=True, max_length=64)),
                ("target_id", fields.CharField(null=True, max_length=64)),
                (
                    "fields_touched",
                    fields.JSONField(
                        default=list,
                        description="Names of personal fields",
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("request_id", fields.CharField(null=True, max_length=128)),
                ("prev_hash", fields.CharField(max_length=64)),
                ("hash", fields.CharField(unique=True, max_length=64)),
            ],
            options={
                "table": "audit_entries",
                "app": "cdlm",
                "indexes": [
                    Index(fields=["actor_id", "sequence"]),
                    Index(fields=["target_type", "target_id", "sequence"]),
                    Index(fields=["action", "sequence"]),
                    Index(fields=["occurred_at"]),
                ],
                "pk_attr": "sequence",
                "table_description": "One audited action. Rows are only ever inserted; ``hash`` chains each to the previous.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="RateLimitCounter",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("key_digest", fields.CharField(max_length=64)),
                ("window_start", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("count", fields.IntField(default=0)),
            ],
            options={
                "table": "rate_limit_counters",
                "app": "cdlm",
                "unique_together": (("key_digest", "window_start"),),
                "pk_attr": "id",
                "table_description": "How many attempts a key made in one window. Keys are keyed digests, never raw values.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="StaffUser",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "email",
                    fields.CharField(
                        unique=True, description="Lower-cased login email", max_length=320
                    ),
                ),
                ("display_name", fields.CharField(max_length=200)),
                (
                    "role",
                    fields.CharEnumField(
                        description="ADMIN: admin\nPRIVACY_OFFICER: privacy_officer\nSTEWARD: steward\nANALYST: analyst\nAGENT: agent\nINGEST: ingest",
                        enum_type=Role,
                        max_length=32,
                    ),
                ),
                ("password_hash", fields.CharField(max_length=256)),
                ("active", fields.BooleanField(default=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("password_changed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "last_login_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "staff_users",
                "app": "cdlm",
                "pk_attr": "id",
                "table_description": "A person who signs in to work with cdlm.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="StaffSession",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "user",
                    fields.ForeignKeyField(
                        "cdlm.StaffUser",
                        source_field="user_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="sessions",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("expires_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "staff_sessions",
                "app": "cdlm",
                "indexes": [Index(fields=["user_id", "revoked_at"])],
                "pk_attr": "id",
                "table_description": "A signed-in session; its id is in the access token, so revoking it ends the token.",
            },
            bases=["Model"],
        ),
    ]
