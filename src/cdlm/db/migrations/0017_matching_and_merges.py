import functools
from json import dumps, loads
from uuid import uuid4

from tortoise import fields, migrations
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from cdlm.consent.models import Method
from cdlm.matching.models import CandidateStatus, MergeKind, RunStatus


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0016_purpose_recipients")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AbsorbedKey",
            fields=[
                (
                    "customer_id",
                    fields.UUIDField(
                        primary_key=True,
                        default=uuid4,
                        unique=True,
                        db_index=True,
                        description="The merged profile",
                    ),
                ),
                ("survivor_id", fields.UUIDField(db_index=True)),
                ("sealed_key", fields.BinaryField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "absorbed_keys",
                "app": "cdlm",
                "pk_attr": "customer_id",
                "table_description": "The data key of a profile merged into another, kept only sealed under the survivor's",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MatchCandidate",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("left_id", fields.UUIDField(db_index=True)),
                ("right_id", fields.UUIDField(db_index=True)),
                (
                    "status",
                    fields.CharEnumField(
                        description="PENDING: pending\nMERGED: merged\nNOT_A_MATCH: not_a_match\nSUPERSEDED: superseded",
                        enum_type=CandidateStatus,
                        max_length=16,
                    ),
                ),
                ("probability", fields.FloatField()),
                ("match_weight", fields.FloatField()),
                (
                    "comparisons",
                    fields.JSONField(
                        description="Per comparison: name, level and match weight (no values)",
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "conflicts",
                    fields.JSONField(
                        default=list,
                        description="Hard conflicts that kept it from an automatic merge",
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("model_version", fields.IntField()),
                ("run_id", fields.UUIDField(null=True)),
                ("found_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("updated_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "left_digest",
                    fields.CharField(
                        description="Keyed digest of the left profile's compared values",
                        max_length=64,
                    ),
                ),
                ("right_digest", fields.CharField(max_length=64)),
                ("decided_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
                ("decided_by_kind", fields.CharField(null=True, max_length=16)),
                ("decided_by_id", fields.UUIDField(null=True)),
                (
                    "note_sealed",
                    fields.BinaryField(null=True, description="Steward's note, survivor's key"),
                ),
                ("merge_id", fields.UUIDField(null=True)),
            ],
            options={
                "table": "match_candidates",
                "app": "cdlm",
                "unique_together": (("left_id", "right_id"),),
                "indexes": [Index(fields=["status", "probability"])],
                "pk_attr": "id",
                "table_description": "A pair of profiles the model scored as possibly one person (``left_id < right_id``).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MatchModel",
            fields=[
                (
                    "version",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "settings",
                    fields.JSONField(
                        description="Splink model, no values",
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                ("trained_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("trained_on", fields.IntField(description="Profiles the model was trained on")),
                ("run_id", fields.UUIDField(null=True)),
            ],
            options={
                "table": "match_models",
                "app": "cdlm",
                "pk_attr": "version",
                "table_description": "One trained linkage model (Splink settings with m/u probabilities), versioned.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MatchRun",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "status",
                    fields.CharEnumField(
                        db_index=True,
                        description="RUNNING: running\nFINISHED: finished\nINTERRUPTED: interrupted\nFAILED: failed",
                        enum_type=RunStatus,
                        max_length=16,
                    ),
                ),
                ("full", fields.BooleanField(description="Every profile, not only those changed")),
                (
                    "trained",
                    fields.BooleanField(description="The model was (re)trained by this run"),
                ),
                ("model_version", fields.IntField(null=True)),
                ("started_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "finished_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("started_by_kind", fields.CharField(max_length=16)),
                ("started_by_id", fields.UUIDField(null=True)),
                (
                    "since",
                    fields.DatetimeField(
                        null=True,
                        description="Profiles changed after this are new",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
                (
                    "cursor_at",
                    fields.DatetimeField(
                        null=True,
                        description="Where the run got to",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
                ("cursor_id", fields.UUIDField(null=True)),
                (
                    "seen_until",
                    fields.DatetimeField(
                        null=True,
                        description="Changes after this were not seen: the next run starts here",
                        auto_now=False,
                        auto_now_add=False,
                    ),
                ),
                ("budget_seconds", fields.IntField(null=True)),
                ("profiles", fields.IntField(default=0, description="Profiles loaded")),
                (
                    "focus",
                    fields.IntField(
                        default=0, description="Profiles compared against their blocks"
                    ),
                ),
                ("compared_pairs", fields.BigIntField(default=0)),
                (
                    "candidates",
                    fields.IntField(
                        default=0, description="Pairs at or above the review threshold"
                    ),
                ),
                ("queued", fields.IntField(default=0, description="Pairs sent to review")),
                ("auto_merged", fields.IntField(default=0)),
                (
                    "dropped",
                    fields.IntField(default=0, description="Pairs below the review threshold"),
                ),
                ("review_above", fields.FloatField()),
                (
                    "auto_merge_above",
                    fields.FloatField(null=True, description="None: auto-merge is off"),
                ),
                ("duration_seconds", fields.FloatField(default=0.0)),
                (
                    "error",
                    fields.CharField(
                        null=True, description="Error class, no values", max_length=200
                    ),
                ),
            ],
            options={
                "table": "match_runs",
                "app": "cdlm",
                "indexes": [Index(fields=["status", "finished_at"])],
                "pk_attr": "id",
                "table_description": "One run of probabilistic matching, with its evidence.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Merge",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("survivor_id", fields.UUIDField(db_index=True)),
                ("merged_id", fields.UUIDField(db_index=True)),
                (
                    "kind",
                    fields.CharEnumField(
                        description="MANUAL: manual\nREVIEW: review\nAUTOMATIC: automatic",
                        enum_type=MergeKind,
                        max_length=16,
                    ),
                ),
                ("candidate_id", fields.UUIDField(null=True)),
                ("probability", fields.FloatField(null=True)),
                ("merged_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("merged_by_kind", fields.CharField(max_length=16)),
                ("merged_by_id", fields.UUIDField(null=True)),
                (
                    "reason_sealed",
                    fields.BinaryField(null=True, description="Under the survivor's key"),
                ),
                (
                    "merged_state",
                    fields.JSONField(
                        description="The merged profile's non-personal state (stage, times), for unmerge",
                        encoder=functools.partial(dumps, separators=(",", ":")),
                        decoder=loads,
                    ),
                ),
                (
                    "unmerged_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("unmerged_by_kind", fields.CharField(null=True, max_length=16)),
                ("unmerged_by_id", fields.UUIDField(null=True)),
                ("unmerge_reason_sealed", fields.BinaryField(null=True)),
            ],
            options={
                "table": "merges",
                "app": "cdlm",
                "indexes": [Index(fields=["survivor_id", "merged_at"])],
                "pk_attr": "id",
                "table_description": "One merge of ``merged_id`` into ``survivor_id``, and its undoing.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="MovedRow",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("merge_id", fields.UUIDField()),
                (
                    "kind",
                    fields.CharField(
                        description="Which table: source_record, event, ...", max_length=24
                    ),
                ),
                ("row_id", fields.UUIDField()),
            ],
            options={
                "table": "merge_moved_rows",
                "app": "cdlm",
                "indexes": [Index(fields=["merge_id", "kind"])],
                "pk_attr": "id",
                "table_description": "A row a merge moved from the merged profile to the survivor (what unmerge moves back).",
            },
            bases=["Model"],
        ),
        ops.AlterField(
            model_name="ConsentEntry",
            name="method",
            field=fields.CharEnumField(
                description="FORM: form\nAPI: api\nIMPORT: import\nGPC: gpc\nAGENT: agent\nREQUEST: request\nMERGE: merge\nUNMERGE: unmerge",
                enum_type=Method,
                max_length=16,
            ),
        ),
        ops.AddField(
            model_name="Customer",
            name="merged_into_id",
            field=fields.UUIDField(
                null=True,
                db_index=True,
                description="Merged: this id now answers with that profile",
            ),
        ),
        # AddField does not create the index its field declares.
        ops.RunSQL(
            'CREATE INDEX IF NOT EXISTS "idx_customers_merged__into" '
            'ON "customers" ("merged_into_id")',
            reverse_sql='DROP INDEX IF EXISTS "idx_customers_merged__into"',
        ),
    ]
