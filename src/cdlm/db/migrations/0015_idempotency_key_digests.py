from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# Keys were stored as clients sent them (emails among them). Only a keyed digest is stored now,
# and the key that makes it is not in the database, so the clear keys cannot be converted here:
# they are deleted with their remembered results (a replay of a request made before the
# upgrade runs again, as after the idempotency_records retention period).
FORGET_CLEAR_KEYS = "DELETE FROM idempotency_records;"


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0014_sealed_staff_text")]

    initial = False

    operations = [
        ops.AlterModelOptions(
            name="IdempotencyRecord",
            options={
                "table": "idempotency_records",
                "app": "cdlm",
                "unique_together": (("scope", "key"),),
                "pk_attr": "id",
                "table_description": "The result of the first call with a key, the key kept only as a keyed digest.",
            },
        ),
        ops.AlterField(
            model_name="IdempotencyRecord",
            name="key",
            field=fields.CharField(description="Keyed digest of the client's key", max_length=200),
        ),
        ops.RunSQL(FORGET_CLEAR_KEYS, reverse_sql="SELECT 1;"),
    ]
