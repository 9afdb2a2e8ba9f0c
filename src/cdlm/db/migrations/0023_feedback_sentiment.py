from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from cdlm.core.vocabulary import SourceKind


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0022_segment_exports")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Event",
            name="csat",
            field=fields.SmallIntField(null=True, description="Feedback: satisfaction answer, 1-5"),
        ),
        ops.AddField(
            model_name="Event",
            name="nps",
            field=fields.SmallIntField(
                null=True, description="Feedback: Net Promoter answer, 0-10"
            ),
        ),
        ops.AddField(
            model_name="Event",
            name="sentiment",
            field=fields.FloatField(
                null=True, description="Feedback: VADER compound score of the sealed text, -1 to 1"
            ),
        ),
        ops.AlterField(
            model_name="SourceRecord",
            name="source_kind",
            field=fields.CharEnumField(
                description="CRM: crm\nWEB_FORM: web_form\nSUPPORT: support\nTRANSACTION: transaction\nTHIRD_PARTY: third_party\nIMPORT: import\nSTAFF: staff\nSURVEY: survey\nSOCIAL: social",
                enum_type=SourceKind,
                max_length=16,
            ),
        ),
    ]
