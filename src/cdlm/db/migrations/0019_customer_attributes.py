from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.fields.data import JSON_DUMPS
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0018_audit_read_inbox")]

    initial = False

    operations = [
        ops.CreateModel(
            name="CustomerAttributes",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "customer",
                    fields.OneToOneField(
                        "cdlm.Customer",
                        source_field="customer_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="attributes",
                        on_delete=OnDelete.CASCADE,
                    ),
                ),
                (
                    "country",
                    fields.CharField(null=True, description="ISO 3166-1 alpha-2", max_length=2),
                ),
                (
                    "region",
                    fields.CharField(null=True, description="Region of the address", max_length=64),
                ),
                ("age_band", fields.CharField(null=True, description="E.g. 25-34", max_length=8)),
                (
                    "acquisition_source",
                    fields.CharField(
                        null=True,
                        description="The system of the first source record",
                        max_length=64,
                    ),
                ),
                ("phone_country", fields.CharField(null=True, max_length=2)),
                ("phone_line_type", fields.CharField(null=True, max_length=32)),
                ("email_domain_kind", fields.CharField(null=True, max_length=32)),
                ("sentiment_average", fields.FloatField(null=True)),
                (
                    "rfm_recency",
                    fields.SmallIntField(null=True, description="Quintile 1-5, 5 most recent"),
                ),
                ("rfm_frequency", fields.SmallIntField(null=True)),
                ("rfm_monetary", fields.SmallIntField(null=True)),
                ("expected_purchases_90d", fields.FloatField(null=True)),
                ("expected_purchases_365d", fields.FloatField(null=True)),
                ("p_alive", fields.FloatField(null=True)),
                (
                    "expected_value_365d",
                    fields.DecimalField(null=True, max_digits=14, decimal_places=2),
                ),
                ("churn_risk", fields.FloatField(null=True)),
                (
                    "derivation",
                    fields.JSONField(
                        default=dict,
                        description="Per attribute: the enricher (name@version) behind it",
                        encoder=JSON_DUMPS,
                        decoder=loads,
                    ),
                ),
                (
                    "derived_at",
                    fields.DatetimeField(
                        description="When the profile attributes were derived",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
                (
                    "scored_at",
                    fields.DatetimeField(
                        null=True,
                        description="As-of date of the scores",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
            ],
            options={
                "table": "customer_attributes",
                "app": "cdlm",
                "indexes": [Index(fields=["country", "age_band"]), Index(fields=["churn_risk"])],
                "pk_attr": "id",
                "table_description": "Coarse attributes derived from a customer's data and kept in clear for analysis.",
            },
            bases=["Model"],
        ),
    ]
