from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


# The audit trail and the consent ledger become striped (cdlm.core.stripes): independent chains,
# each with its own lock and head. Entries written before are stripe 0, where their chain stays
# valid. No new table: the application role's grants (cdlm.db.roles) cover the new column.
class Migration(migrations.Migration):
    dependencies = [("cdlm", "0031_events_by_month")]

    initial = False

    operations = [
        ops.AddField(
            model_name="AuditEntry",
            name="stripe",
            field=fields.SmallIntField(
                default=0,
                description="Which chain of the ledger (cdlm.core.stripes); 0 before striping",
            ),
        ),
        ops.AddIndex(
            model_name="AuditEntry",
            index=Index(fields=["stripe", "sequence"]),
        ),
        ops.AlterModelOptions(
            name="ConsentEntry",
            options={
                "table": "consent_entries",
                "app": "cdlm",
                "indexes": [
                    Index(fields=["customer_id", "purpose_id", "sequence"]),
                    Index(fields=["stripe", "sequence"]),
                ],
                "pk_attr": "sequence",
                "table_description": "One decision, appended to the ledger; ``hash`` chains it to the previous entry of its",
            },
        ),
        ops.AddField(
            model_name="ConsentEntry",
            name="stripe",
            field=fields.SmallIntField(
                default=0,
                description="Which chain of the ledger (cdlm.core.stripes); 0 before striping",
            ),
        ),
        ops.AddIndex(
            model_name="ConsentEntry",
            index=Index(fields=["stripe", "sequence"]),
        ),
    ]
