"""Values refused by validation: kept (encrypted) with their reason, never silently dropped."""

from __future__ import annotations

from tortoise import fields

from cdlm.core.tables import Model


class InvalidValue(Model):
    """A value a source sent that failed validation and stayed out of the profile."""

    id = fields.UUIDField(primary_key=True)
    # cdlm.Customer is named, not imported: customers sits above quality and uses it.
    customer: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "cdlm.Customer", related_name="invalid_values", on_delete=fields.CASCADE
    )
    source_record_id = fields.UUIDField(null=True)
    field = fields.CharField(max_length=64)
    code = fields.CharField(max_length=32)
    message = fields.CharField(max_length=200)
    value_sealed = fields.BinaryField()
    created_at = fields.DatetimeField()
    resolved_at = fields.DatetimeField(null=True, description="When a valid value replaced it")

    class Meta:
        table = "invalid_values"
        indexes = (("customer_id", "resolved_at"), ("field", "code"))
