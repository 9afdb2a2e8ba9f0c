from uuid import uuid4

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="Installation",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("singleton", fields.BooleanField(default=True, unique=True)),
                ("installed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("installed_version", fields.CharField(max_length=32)),
            ],
            options={
                "table": "installation",
                "app": "cdlm",
                "pk_attr": "id",
                "table_description": "The one row describing this installation, written when its database is first prepared.",
            },
            bases=["Model"],
        ),
    ]
