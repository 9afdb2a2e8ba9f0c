from tortoise import fields, migrations
from tortoise.migrations import operations as ops

APPEND_ONLY = """
CREATE OR REPLACE FUNCTION cdlm_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit_entries is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_entries_append_only
    BEFORE UPDATE OR DELETE ON audit_entries
    FOR EACH ROW EXECUTE FUNCTION cdlm_audit_append_only();
"""

DROP_APPEND_ONLY = """
DROP TRIGGER IF EXISTS audit_entries_append_only ON audit_entries;
DROP FUNCTION IF EXISTS cdlm_audit_append_only();
"""


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0002_auth_audit")]

    initial = False

    operations = [
        ops.AlterField(
            model_name="AuditEntry",
            name="target_id",
            field=fields.CharField(null=True, max_length=200),
        ),
        ops.RunSQL(APPEND_ONLY, reverse_sql=DROP_APPEND_ONLY),
    ]
