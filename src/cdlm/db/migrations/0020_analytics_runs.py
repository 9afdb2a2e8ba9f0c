from uuid import uuid4

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from cdlm.analytics.models import AnalyticsRunStatus


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0019_customer_attributes")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AnalyticsRun",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        db_index=True,
                        description="RUNNING: running\nFINISHED: finished\nFAILED: failed",
                        enum_type=AnalyticsRunStatus,
                        max_length=16,
                    ),
                ),
                (
                    "as_of",
                    fields.DatetimeField(
                        description="End of the observation window (exclusive)",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("duration_seconds", fields.FloatField(default=0.0)),
                (
                    "purchase_types",
                    fields.JSONField(
                        description="Event types counted as purchases",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                ("currency", fields.CharField(description="Reporting currency", max_length=3)),
                ("customers_scored", fields.IntField(default=0)),
                (
                    "customers_cleared",
                    fields.IntField(
                        default=0, description="Customers whose earlier scores were removed"
                    ),
                ),
                ("purchases", fields.IntField(default=0, description="Purchase events counted")),
                ("buyers", fields.IntField(default=0, description="Customers with a purchase")),
                (
                    "repeat_buyers",
                    fields.IntField(default=0, description="Buyers on more than one day"),
                ),
                (
                    "skipped_amounts",
                    fields.JSONField(
                        default=dict,
                        description="Currency -> purchases whose amount had no rate",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                ("bgnbd_r", fields.FloatField(null=True)),
                ("bgnbd_alpha", fields.FloatField(null=True, description="In days")),
                ("bgnbd_a", fields.FloatField(null=True)),
                ("bgnbd_b", fields.FloatField(null=True)),
                ("bgnbd_log_likelihood", fields.FloatField(null=True)),
                ("bgnbd_converged", fields.BooleanField(null=True)),
                ("gamma_gamma_p", fields.FloatField(null=True)),
                ("gamma_gamma_q", fields.FloatField(null=True)),
                ("gamma_gamma_v", fields.FloatField(null=True)),
                ("gamma_gamma_log_likelihood", fields.FloatField(null=True)),
                ("gamma_gamma_converged", fields.BooleanField(null=True)),
                (
                    "note",
                    fields.CharField(
                        null=True,
                        description="Why a model was not fitted or not used",
                        max_length=500,
                    ),
                ),
                (
                    "error",
                    fields.CharField(
                        null=True, description="Error class, no values", max_length=200
                    ),
                ),
            ],
            options={
                "table": "analytics_runs",
                "app": "cdlm",
                "indexes": [Index(fields=["status", "started_at"])],
                "pk_attr": "id",
                "table_description": "One refresh of the customers' scores (RFM, lifetime value, churn risk), with its",
            },
            bases=["Model"],
        ),
        ops.AlterField(
            model_name="CustomerAttributes",
            name="derived_at",
            field=fields.DatetimeField(
                null=True,
                description="When the profile attributes were derived; null: not yet",
                auto_now=False,
                auto_now_add=False,
            ),
        ),
    ]
