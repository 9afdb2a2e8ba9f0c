from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0024_item_recommendations")]

    initial = False

    operations = [
        ops.CreateModel(
            name="DataOwnership",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "category",
                    fields.CharField(description="Data category (fideslang key)", max_length=100),
                ),
                (
                    "owner_id",
                    fields.UUIDField(description="Staff user accountable for the category"),
                ),
                (
                    "steward_id",
                    fields.UUIDField(description="Staff user who looks after its quality"),
                ),
                ("assigned_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("assigned_by_kind", fields.CharField(max_length=16)),
                ("assigned_by_id", fields.UUIDField(null=True)),
                (
                    "ended_at",
                    fields.DatetimeField(
                        null=True,
                        description="When a reassignment replaced it",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
            ],
            options={
                "table": "data_ownership",
                "app": "cdlm",
                "indexes": [
                    Index(fields=["category", "ended_at"]),
                    Index(fields=["steward_id", "ended_at"]),
                ],
                "pk_attr": "id",
                "table_description": "One assignment of an owner and a steward to a data category.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="StaffTraining",
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
                        related_name="trainings",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                ("course", fields.CharField(max_length=200)),
                ("completed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("valid_until", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("recorded_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "staff_trainings",
                "app": "cdlm",
                "indexes": [Index(fields=["user_id", "valid_until"])],
                "pk_attr": "id",
                "table_description": "A privacy training a staff user completed, and until when it counts as current.",
            },
            bases=["Model"],
        ),
    ]
