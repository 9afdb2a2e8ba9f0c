import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.migrations import operations as ops

from cdlm.core.identifiers import IdentifierKind


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0011_sweep_failures_and_closed_requests")]

    initial = False

    operations = [
        ops.CreateModel(
            name="IdentityConflict",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "customer_id",
                    fields.UUIDField(db_index=True, description="The profile the record went to"),
                ),
                (
                    "other_customer_id",
                    fields.UUIDField(
                        db_index=True, description="The profile holding the shared identifier"
                    ),
                ),
                (
                    "identifier_kind",
                    fields.CharEnumField(
                        description="EXTERNAL_ID: external_id\nEMAIL: email\nPHONE: phone",
                        enum_type=IdentifierKind,
                        max_length=16,
                    ),
                ),
                (
                    "blind_index",
                    fields.CharField(
                        db_index=True, description="HMAC of the shared identifier", max_length=64
                    ),
                ),
                (
                    "reasons",
                    fields.JSONField(
                        description="Contradiction codes",
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "source_record_id",
                    fields.UUIDField(description="The record that was kept apart"),
                ),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "resolved_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
            ],
            options={
                "table": "identity_conflicts",
                "app": "cdlm",
                "pk_attr": "id",
                "table_description": "Two profiles that share an email or phone but were taken for two people.",
            },
            bases=["Model"],
        ),
    ]
