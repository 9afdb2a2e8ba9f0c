from tortoise import fields, migrations
from tortoise.contrib.postgres.fields import ArrayField
from tortoise.migrations import operations as ops

# AddField and CreateModel create no index for these: the subjects of read records are found by
# overlap (``subject_ids && $1``), which a GIN index answers.
SUBJECT_INDEXES = """
CREATE INDEX IF NOT EXISTS "idx_audit_entries_subject_ids" ON "audit_entries" USING GIN ("subject_ids");
CREATE INDEX IF NOT EXISTS "idx_audit_pending_subject_ids" ON "audit_pending" USING GIN ("subject_ids");
"""

DROP_SUBJECT_INDEXES = """
DROP INDEX IF EXISTS "idx_audit_entries_subject_ids";
DROP INDEX IF EXISTS "idx_audit_pending_subject_ids";
"""

# The inbox is insert-only for the application. A row leaves it only by being moved into the
# chain: the sequencer inserts the entry (same id) and deletes the pending row in one
# transaction, so a delete of a row whose entry is not in audit_entries is refused. Updates and
# TRUNCATE are refused (cdlm_refuse_truncate comes from 0007).
INBOX_GUARDS = """
CREATE OR REPLACE FUNCTION cdlm_audit_pending_guard() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF EXISTS (SELECT 1 FROM audit_entries WHERE id = OLD.id) THEN
            RETURN OLD;
        END IF;
        RAISE EXCEPTION 'audit_pending is insert-only: a row leaves it only into audit_entries'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RAISE EXCEPTION 'audit_pending is insert-only' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_pending_insert_only
    BEFORE UPDATE OR DELETE ON audit_pending
    FOR EACH ROW EXECUTE FUNCTION cdlm_audit_pending_guard();
CREATE TRIGGER audit_pending_no_truncate BEFORE TRUNCATE ON audit_pending
    FOR EACH STATEMENT EXECUTE FUNCTION cdlm_refuse_truncate();
"""

DROP_INBOX_GUARDS = """
DROP TRIGGER IF EXISTS audit_pending_no_truncate ON audit_pending;
DROP TRIGGER IF EXISTS audit_pending_insert_only ON audit_pending;
DROP FUNCTION IF EXISTS cdlm_audit_pending_guard();
"""


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0017_matching_and_merges")]

    initial = False

    operations = [
        ops.CreateModel(
            name="AuditPending",
            fields=[
                (
                    "arrival",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                ("id", fields.UUIDField(unique=True, description="The id the chained entry keeps")),
                ("occurred_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("actor_kind", fields.CharField(max_length=16)),
                ("actor_id", fields.UUIDField(null=True)),
                ("actor_role", fields.CharField(null=True, max_length=32)),
                ("action", fields.CharField(max_length=100)),
                (
                    "target_type",
                    fields.CharField(
                        description="What subject_ids are: customer, ...", max_length=64
                    ),
                ),
                (
                    "fields_touched",
                    ArrayField(description="Names of personal fields", element_type="TEXT"),
                ),
                ("request_id", fields.CharField(null=True, max_length=128)),
                (
                    "subject_ids",
                    ArrayField(description="The records read (GIN-indexed)", element_type="UUID"),
                ),
            ],
            options={
                "table": "audit_pending",
                "app": "cdlm",
                "pk_attr": "arrival",
                "table_description": "A read of personal data waiting to be chained (the inbox of the audit sequencer).",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="AuditEntry",
            name="subject_ids",
            field=ArrayField(
                null=True,
                description="Records (of target_type) a read record covers (GIN-indexed); else null",
                element_type="UUID",
            ),
        ),
        ops.RunSQL(SUBJECT_INDEXES, reverse_sql=DROP_SUBJECT_INDEXES),
        ops.RunSQL(INBOX_GUARDS, reverse_sql=DROP_INBOX_GUARDS),
    ]
