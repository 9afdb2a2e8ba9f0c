"""Tables of probabilistic matching and of merges.

Nothing here holds a personal value in clear: candidates are pairs of ids with scores and the
level and weight of each comparison, models hold m/u probabilities, runs hold counts, and a
merge holds the ids of the rows it moved. Staff notes and reasons are sealed under the
surviving customer's data key, so erasing the person shreds them too.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from tortoise import fields

from cdlm.core.tables import Model


class CandidateStatus(StrEnum):
    """Where a proposed pair stands."""

    PENDING = "pending"  # waiting for a steward
    MERGED = "merged"  # merged, by a steward or automatically
    NOT_A_MATCH = "not_a_match"  # a steward said they are two people
    SUPERSEDED = "superseded"  # one side was merged, erased or restricted meanwhile


class MergeKind(StrEnum):
    """How a merge was decided."""

    MANUAL = "manual"  # mergeCustomers
    REVIEW = "review"  # a candidate resolved as MERGE
    AUTOMATIC = "automatic"  # a match run above the auto-merge threshold


class RunStatus(StrEnum):
    """The state of a match run."""

    RUNNING = "running"
    FINISHED = "finished"
    INTERRUPTED = "interrupted"  # time budget spent or stopped: the next run resumes it
    FAILED = "failed"


class MatchModel(Model):
    """One trained linkage model (Splink settings with m/u probabilities), versioned."""

    version = fields.IntField(primary_key=True)
    settings: dict[str, Any] = fields.JSONField(description="Splink model, no values")
    trained_at = fields.DatetimeField()
    trained_on = fields.IntField(description="Profiles the model was trained on")
    run_id = fields.UUIDField(null=True)

    class Meta:
        table = "match_models"


class MatchRun(Model):
    """One run of probabilistic matching, with its evidence."""

    id = fields.UUIDField(primary_key=True)
    status = fields.CharEnumField(RunStatus, max_length=16, db_index=True)
    full = fields.BooleanField(description="Every profile, not only those changed")
    trained = fields.BooleanField(description="The model was (re)trained by this run")
    model_version = fields.IntField(null=True)
    started_at = fields.DatetimeField()
    finished_at = fields.DatetimeField(null=True)
    started_by_kind = fields.CharField(max_length=16)
    started_by_id = fields.UUIDField(null=True)
    since = fields.DatetimeField(null=True, description="Profiles changed after this are new")
    cursor_at = fields.DatetimeField(null=True, description="Where the run got to")
    cursor_id = fields.UUIDField(null=True)
    seen_until = fields.DatetimeField(
        null=True, description="Changes after this were not seen: the next run starts here"
    )
    budget_seconds = fields.IntField(null=True)
    profiles = fields.IntField(default=0, description="Profiles loaded")
    focus = fields.IntField(default=0, description="Profiles compared against their blocks")
    compared_pairs = fields.BigIntField(default=0)
    candidates = fields.IntField(default=0, description="Pairs at or above the review threshold")
    queued = fields.IntField(default=0, description="Pairs sent to review")
    auto_merged = fields.IntField(default=0)
    dropped = fields.IntField(default=0, description="Pairs below the review threshold")
    review_above = fields.FloatField()
    auto_merge_above = fields.FloatField(null=True, description="None: auto-merge is off")
    duration_seconds = fields.FloatField(default=0.0)
    error = fields.CharField(max_length=200, null=True, description="Error class, no values")

    class Meta:
        table = "match_runs"
        indexes = (("status", "finished_at"),)


class MatchCandidate(Model):
    """A pair of profiles the model scored as possibly one person (``left_id < right_id``)."""

    id = fields.UUIDField(primary_key=True)
    left_id = fields.UUIDField(db_index=True)
    right_id = fields.UUIDField(db_index=True)
    status = fields.CharEnumField(CandidateStatus, max_length=16)
    probability = fields.FloatField()
    match_weight = fields.FloatField()
    comparisons: list[dict[str, Any]] = fields.JSONField(
        description="Per comparison: name, level and match weight (no values)"
    )
    conflicts: list[str] = fields.JSONField(
        default=list, description="Hard conflicts that kept it from an automatic merge"
    )
    model_version = fields.IntField()
    run_id = fields.UUIDField(null=True)
    found_at = fields.DatetimeField()
    updated_at = fields.DatetimeField()
    left_digest = fields.CharField(
        max_length=64, description="Keyed digest of the left profile's compared values"
    )
    right_digest = fields.CharField(max_length=64)
    decided_at = fields.DatetimeField(null=True)
    decided_by_kind = fields.CharField(max_length=16, null=True)
    decided_by_id = fields.UUIDField(null=True)
    note_sealed = fields.BinaryField(null=True, description="Steward's note, survivor's key")
    merge_id = fields.UUIDField(null=True)

    class Meta:
        table = "match_candidates"
        unique_together = (("left_id", "right_id"),)
        indexes = (("status", "probability"),)


class Merge(Model):
    """One merge of ``merged_id`` into ``survivor_id``, and its undoing."""

    id = fields.UUIDField(primary_key=True)
    survivor_id = fields.UUIDField(db_index=True)
    merged_id = fields.UUIDField(db_index=True)
    kind = fields.CharEnumField(MergeKind, max_length=16)
    candidate_id = fields.UUIDField(null=True)
    probability = fields.FloatField(null=True)
    merged_at = fields.DatetimeField()
    merged_by_kind = fields.CharField(max_length=16)
    merged_by_id = fields.UUIDField(null=True)
    reason_sealed = fields.BinaryField(null=True, description="Under the survivor's key")
    merged_state: dict[str, Any] = fields.JSONField(
        description="The merged profile's non-personal state (stage, times), for unmerge"
    )
    unmerged_at = fields.DatetimeField(null=True)
    unmerged_by_kind = fields.CharField(max_length=16, null=True)
    unmerged_by_id = fields.UUIDField(null=True)
    unmerge_reason_sealed = fields.BinaryField(null=True)

    class Meta:
        table = "merges"
        indexes = (("survivor_id", "merged_at"),)


class MovedRow(Model):
    """A row a merge moved from the merged profile to the survivor (what unmerge moves back)."""

    id = fields.BigIntField(primary_key=True)
    merge_id = fields.UUIDField()
    kind = fields.CharField(max_length=24, description="Which table: source_record, event, ...")
    row_id = fields.UUIDField()

    class Meta:
        table = "merge_moved_rows"
        indexes = (("merge_id", "kind"),)
