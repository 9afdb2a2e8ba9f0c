"""The identities table: which identifier belongs to which customer."""

from __future__ import annotations

from tortoise import fields

from cdlm.core.identifiers import IdentifierKind
from cdlm.core.tables import Model


class Identity(Model):
    """One identifier of one customer. An identifier belongs to at most one customer."""

    id = fields.UUIDField(primary_key=True)
    # cdlm.Customer is named, not imported: customers sits above identity and uses it.
    customer: fields.ForeignKeyRelation[Model] = fields.ForeignKeyField(
        "cdlm.Customer", related_name="identities", on_delete=fields.CASCADE
    )
    kind = fields.CharEnumField(IdentifierKind, max_length=16)
    namespace = fields.CharField(max_length=32, default="")
    blind_index = fields.CharField(max_length=64, description="HMAC of the normalized value")
    value_sealed = fields.BinaryField()
    source_record_id = fields.UUIDField(null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "identities"
        unique_together = (("kind", "namespace", "blind_index"),)
        indexes = (("customer_id", "kind"),)


class Suppression(Model):
    """An identifier of an erased person: records carrying it are not re-created (the blind
    index only; the value itself is gone)."""

    blind_index = fields.CharField(max_length=64, primary_key=True)
    kind = fields.CharEnumField(IdentifierKind, max_length=16)
    request_id = fields.UUIDField(null=True, description="The erasure request")
    created_at = fields.DatetimeField()

    class Meta:
        table = "suppressed_identifiers"


class IdentityConflict(Model):
    """Two profiles that share an email or phone but were taken for two people.

    A record matched on the shared identifier was contradicted (:mod:`cdlm.identity.agreement`)
    and kept apart; the pair waits for a steward's review. Ids, the shared identifier's blind
    index and reason codes only; no values.
    """

    id = fields.UUIDField(primary_key=True)
    customer_id = fields.UUIDField(db_index=True, description="The profile the record went to")
    other_customer_id = fields.UUIDField(
        db_index=True, description="The profile holding the shared identifier"
    )
    identifier_kind = fields.CharEnumField(IdentifierKind, max_length=16)
    blind_index = fields.CharField(
        max_length=64, db_index=True, description="HMAC of the shared identifier"
    )
    reasons: list[str] = fields.JSONField(description="Contradiction codes")
    source_record_id = fields.UUIDField(description="The record that was kept apart")
    created_at = fields.DatetimeField()
    resolved_at = fields.DatetimeField(null=True)

    class Meta:
        table = "identity_conflicts"
