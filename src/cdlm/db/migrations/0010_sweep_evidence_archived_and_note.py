from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0009_retention_policies_and_sweeps")]

    initial = False

    operations = [
        ops.AlterField(
            model_name="SweepEvidence",
            name="skipped_held",
            field=fields.IntField(default=0, description="Due, kept by a hold or open request"),
        ),
        ops.AddField(
            model_name="SweepEvidence",
            name="archived",
            field=fields.IntField(default=0, description="Records written to the archive"),
        ),
        ops.AddField(
            model_name="SweepEvidence",
            name="note",
            field=fields.CharField(null=True, description="Why it stopped early", max_length=200),
        ),
    ]
