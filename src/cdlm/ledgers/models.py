"""What the database remembers of the checkpoints written outside it."""

from __future__ import annotations

from tortoise import fields

from cdlm.core.tables import Model


class LedgerCheckpoint(Model):
    """A checkpoint of a ledger's head, written to the write-once store. Inserted only (the
    application role may not update or delete): the newest row says which checkpoint the
    store must hold, so one removed from the store is noticed."""

    id = fields.UUIDField(primary_key=True)
    ledger = fields.CharField(max_length=16, description="audit or consent")
    sequence = fields.BigIntField(description="Sequence of the head entry checkpointed")
    hash = fields.CharField(max_length=64, description="Hash of that entry")
    count = fields.BigIntField(description="Entries up to and including it")
    key_id = fields.CharField(max_length=32, null=True, description="Its ledger key id")
    name = fields.CharField(max_length=200, description="The checkpoint's name in the store")
    digest = fields.CharField(max_length=64, description="SHA-256 of the stored document")
    checkpointed_at = fields.DatetimeField()

    class Meta:
        table = "ledger_checkpoints"
        unique_together = (("ledger", "sequence"),)
