from uuid import uuid4

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0004_customers_vault_identity")]

    initial = False

    operations = [
        ops.CreateModel(
            name="ImportRun",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("file_digest", fields.CharField(unique=True, max_length=64)),
                ("file_name", fields.CharField(max_length=255)),
                ("source_system", fields.CharField(max_length=64)),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("last_line", fields.IntField(default=0)),
                ("created", fields.IntField(default=0)),
                ("matched", fields.IntField(default=0)),
                ("rejected", fields.IntField(default=0)),
            ],
            options={
                "table": "import_runs",
                "app": "cdlm",
                "pk_attr": "id",
                "table_description": "Progress of one file import, committed with each batch so a rerun resumes exactly.",
            },
            bases=["Model"],
        ),
    ]
