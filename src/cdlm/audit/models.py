"""The audit trail tables: the hash chain, and the inbox of read records waiting to join it."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.contrib.postgres.fields import ArrayField

from cdlm.core.tables import Model


class AuditEntry(Model):
    """One audited action. Rows are only ever inserted; ``hash`` chains each to the previous."""

    sequence = fields.BigIntField(primary_key=True)
    id = fields.UUIDField(unique=True)
    occurred_at = fields.DatetimeField()
    actor_kind = fields.CharField(max_length=16)
    actor_id = fields.UUIDField(null=True)
    actor_role = fields.CharField(max_length=32, null=True)
    action = fields.CharField(max_length=100)
    target_type = fields.CharField(max_length=64, null=True)
    target_id = fields.CharField(max_length=200, null=True)
    fields_touched: list[str] = fields.JSONField(
        default=list, description="Names of personal fields"
    )
    request_id = fields.CharField(max_length=128, null=True)
    subject_ids: list[uuid.UUID] | None = ArrayField(
        element_type="uuid",
        null=True,
        description="Records (of target_type) a read record covers (GIN-indexed); else null",
    )
    prev_hash = fields.CharField(max_length=64)
    hash = fields.CharField(max_length=64, unique=True)
    key_id = fields.CharField(
        max_length=32, null=True, description="Ledger key of the HMAC; null: legacy SHA-256"
    )
    stripe = fields.SmallIntField(
        default=0, description="Which chain of the ledger (cdlm.core.stripes); 0 before striping"
    )

    class Meta:
        table = "audit_entries"
        indexes = (
            ("actor_id", "sequence"),
            ("target_type", "target_id", "sequence"),
            ("action", "sequence"),
            ("occurred_at",),
            ("stripe", "sequence"),
        )


class AuditPending(Model):
    """A read of personal data waiting to be chained (the inbox of the audit sequencer).

    A request's reads are recorded here with one insert, without the chain's lock; the sequencer
    (:mod:`cdlm.audit.sequencer`) appends them to ``audit_entries`` in arrival order. Rows are
    inserted by the request path and deleted only by their move into the chain (a trigger
    refuses updates, and deletes of rows whose entry is not in ``audit_entries``).
    """

    arrival = fields.BigIntField(primary_key=True)
    id = fields.UUIDField(unique=True, description="The id the chained entry keeps")
    occurred_at = fields.DatetimeField()
    actor_kind = fields.CharField(max_length=16)
    actor_id = fields.UUIDField(null=True)
    actor_role = fields.CharField(max_length=32, null=True)
    action = fields.CharField(max_length=100)
    target_type = fields.CharField(max_length=64, description="What subject_ids are: customer, ...")
    fields_touched: list[str] = ArrayField(
        element_type="text", description="Names of personal fields"
    )
    request_id = fields.CharField(max_length=128, null=True)
    subject_ids: list[uuid.UUID] = ArrayField(
        element_type="uuid", description="The records read (GIN-indexed)"
    )

    class Meta:
        table = "audit_pending"
