from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# Requests denied or cancelled before closing times were kept for every closed status.
CLOSED_AT = """
UPDATE dsr_requests SET completed_at = updated_at
WHERE status IN ('denied', 'cancelled') AND completed_at IS NULL;
"""


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0010_sweep_evidence_archived_and_note")]

    initial = False

    operations = [
        ops.AddField(
            model_name="SweepEvidence",
            name="failures",
            field=fields.IntField(default=0, description="Failed tries of the next batch"),
        ),
        ops.RunSQL(CLOSED_AT, reverse_sql="SELECT 1;"),
    ]
