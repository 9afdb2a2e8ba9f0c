from uuid import uuid4

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from cdlm.db.roles import GRANT_APP_ROLE


# Entries written from now on are keyed (HMAC under CDLM_LEDGER_KEY, their key id in key_id);
# those before keep a null key_id and their SHA-256 hash (cdlm.core.chain). The checkpoints'
# table is a ledger too: the application role may insert and read it, not change it.
class Migration(migrations.Migration):
    dependencies = [("cdlm", "0029_database_roles")]

    initial = False

    operations = [
        ops.CreateModel(
            name="LedgerCheckpoint",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("ledger", fields.CharField(description="audit or consent", max_length=16)),
                (
                    "sequence",
                    fields.BigIntField(description="Sequence of the head entry checkpointed"),
                ),
                ("hash", fields.CharField(description="Hash of that entry", max_length=64)),
                ("count", fields.BigIntField(description="Entries up to and including it")),
                (
                    "key_id",
                    fields.CharField(null=True, description="Its ledger key id", max_length=32),
                ),
                (
                    "name",
                    fields.CharField(
                        description="The checkpoint's name in the store", max_length=200
                    ),
                ),
                (
                    "digest",
                    fields.CharField(description="SHA-256 of the stored document", max_length=64),
                ),
                ("checkpointed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "ledger_checkpoints",
                "app": "cdlm",
                "unique_together": (("ledger", "sequence"),),
                "pk_attr": "id",
                "table_description": "A checkpoint of a ledger's head, written to the write-once store. Inserted only (the",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="AuditEntry",
            name="key_id",
            field=fields.CharField(
                null=True, description="Ledger key of the HMAC; null: legacy SHA-256", max_length=32
            ),
        ),
        ops.AddField(
            model_name="ConsentEntry",
            name="key_id",
            field=fields.CharField(
                null=True, description="Ledger key of the HMAC; null: legacy SHA-256", max_length=32
            ),
        ),
        ops.RunSQL(GRANT_APP_ROLE, reverse_sql="SELECT 1"),
    ]
