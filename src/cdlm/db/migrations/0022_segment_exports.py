from uuid import uuid4

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0021_segments")]

    initial = False

    operations = [
        ops.CreateModel(
            name="SegmentExport",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "segment",
                    fields.ForeignKeyField(
                        "cdlm.Segment",
                        source_field="segment_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="exports",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("purpose_code", fields.CharField(db_index=True, max_length=64)),
                ("format", fields.CharField(description="csv or json_lines", max_length=16)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "created_by",
                    fields.CharField(description="Principal id of the exporter", max_length=100),
                ),
                (
                    "members_evaluated",
                    fields.IntField(description="Members of the segment at export time"),
                ),
                ("members_exported", fields.IntField()),
                (
                    "left_out_for_consent",
                    fields.IntField(description="Members the purpose may not process"),
                ),
                (
                    "exported_fields",
                    fields.JSONField(
                        description="Columns of the file, in order",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                ("content_sealed", fields.BinaryField(null=True, description="The file, sealed")),
                ("size_bytes", fields.IntField()),
                ("sha256", fields.CharField(max_length=64)),
            ],
            options={
                "table": "segment_exports",
                "app": "cdlm",
                "indexes": [Index(fields=["created_at", "id"])],
                "pk_attr": "id",
                "table_description": "One export of a segment's members for a purpose: what was written (counts, fields) and",
            },
            bases=["Model"],
        ),
        ops.AlterModelOptions(
            name="DownloadToken",
            options={
                "table": "dsr_download_tokens",
                "app": "cdlm",
                "pk_attr": "token_id",
                "table_description": "A short-lived bearer token for one file: ``cdlm_dl_<token_id>_<secret>``. It opens",
            },
        ),
        ops.AlterField(
            model_name="DownloadToken",
            name="export",
            field=fields.ForeignKeyField(
                "cdlm.AccessExport",
                source_field="export_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="tokens",
                on_delete=OnDelete.CASCADE,
            ),
        ),
        ops.AddField(
            model_name="DownloadToken",
            name="segment_export",
            field=fields.ForeignKeyField(
                "cdlm.SegmentExport",
                source_field="segment_export_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="tokens",
                on_delete=OnDelete.CASCADE,
            ),
        ),
    ]
