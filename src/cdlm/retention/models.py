"""Tables of retention: retention policies, and the evidence sweeps leave."""

from __future__ import annotations

from enum import StrEnum

from tortoise import fields

from cdlm.core.tables import Model


class Trigger(StrEnum):
    """What a retention period is counted from."""

    SINCE_COLLECTION = "since_collection"
    SINCE_LAST_ACTIVITY = "since_last_activity"
    SINCE_REQUEST_COMPLETION = "since_request_completion"


class Action(StrEnum):
    """What happens to data past its period."""

    DELETE = "delete"
    ANONYMIZE = "anonymize"
    ARCHIVE = "archive"
    CRYPTO_SHRED = "crypto_shred"


class RetentionPolicy(Model):
    """How long one category of data is kept, and what happens then."""

    id = fields.UUIDField(primary_key=True)
    category = fields.CharField(max_length=64, unique=True)
    period_days = fields.IntField()
    trigger = fields.CharEnumField(Trigger, max_length=32)
    action = fields.CharEnumField(Action, max_length=16)
    description = fields.CharField(max_length=500, default="")
    active = fields.BooleanField(default=True)
    created_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()

    class Meta:
        table = "retention_policies"


class SweepRun(Model):
    """One retention sweep; ``as_of`` is fixed at its start, so a resumed run disposes of
    exactly what the interrupted one would have."""

    id = fields.UUIDField(primary_key=True)
    as_of = fields.DatetimeField()
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    started_by_kind = fields.CharField(max_length=16)

    class Meta:
        table = "retention_sweep_runs"


class SweepEvidence(Model):
    """What a run did under one policy: the policy as it was, counts, the time range of what
    was disposed of, a digest of it, archive objects, and where the run got to."""

    id = fields.UUIDField(primary_key=True)
    run: fields.ForeignKeyRelation[SweepRun] = fields.ForeignKeyField(
        "cdlm.SweepRun", related_name="evidence", on_delete=fields.RESTRICT
    )
    policy_id = fields.UUIDField()
    category = fields.CharField(max_length=64)
    action = fields.CharEnumField(Action, max_length=16)
    trigger = fields.CharEnumField(Trigger, max_length=32)
    period_days = fields.IntField()
    cutoff = fields.DatetimeField()
    cursor = fields.CharField(max_length=100, null=True)
    batches = fields.IntField(default=0)
    disposed = fields.IntField(default=0)
    archived = fields.IntField(default=0, description="Records written to the archive")
    skipped_held = fields.IntField(default=0, description="Due, kept by a hold or open request")
    first_at = fields.DatetimeField(null=True)
    last_at = fields.DatetimeField(null=True)
    digest = fields.CharField(max_length=64)
    archive_objects: list[str] = fields.JSONField(default=list)
    done = fields.BooleanField(default=False)
    failures = fields.IntField(default=0, description="Failed tries of the next batch")
    note = fields.CharField(max_length=200, null=True, description="Why it stopped early")
    months: list[str] = fields.JSONField(
        default=list, description="Months of events disposed of whole (2026-01)"
    )
    month_cursor = fields.CharField(
        max_length=7, null=True, description="The last month of events examined whole"
    )

    class Meta:
        table = "retention_sweep_evidence"
