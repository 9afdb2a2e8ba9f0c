from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0013_request_clock_pause_rules")]

    initial = False

    operations = [
        ops.AlterField(
            model_name="DataSubjectRequest",
            name="extension_reason",
            field=fields.CharField(
                null=True, description="Not written any more: see the sealed column", max_length=500
            ),
        ),
        ops.AlterField(
            model_name="DataSubjectRequest",
            name="reason",
            field=fields.CharField(
                null=True,
                description="cdlm's own reason (duplicate, expiry, failure)",
                max_length=500,
            ),
        ),
        ops.AddField(
            model_name="DataSubjectRequest",
            name="extension_reason_sealed",
            field=fields.BinaryField(
                null=True, description="Staff's reason of the extension, under the request key"
            ),
        ),
        ops.AddField(
            model_name="DataSubjectRequest",
            name="staff_reason_sealed",
            field=fields.BinaryField(
                null=True, description="Staff's reason of a denial, cancellation or hold, sealed"
            ),
        ),
        ops.AlterField(
            model_name="RequestEvent",
            name="note",
            field=fields.CharField(null=True, description="cdlm's own words only", max_length=500),
        ),
        ops.AddField(
            model_name="RequestEvent",
            name="note_sealed",
            field=fields.BinaryField(
                null=True, description="What staff wrote, under the request key"
            ),
        ),
    ]
