from tortoise import migrations
from tortoise.migrations import operations as ops

REFUSE_TRUNCATE = """
CREATE OR REPLACE FUNCTION cdlm_refuse_truncate() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER audit_entries_no_truncate BEFORE TRUNCATE ON audit_entries
    FOR EACH STATEMENT EXECUTE FUNCTION cdlm_refuse_truncate();
CREATE TRIGGER consent_entries_no_truncate BEFORE TRUNCATE ON consent_entries
    FOR EACH STATEMENT EXECUTE FUNCTION cdlm_refuse_truncate();
"""

ALLOW_TRUNCATE = """
DROP TRIGGER IF EXISTS audit_entries_no_truncate ON audit_entries;
DROP TRIGGER IF EXISTS consent_entries_no_truncate ON consent_entries;
DROP FUNCTION IF EXISTS cdlm_refuse_truncate();
"""


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0006_consent")]

    initial = False

    operations = [ops.RunSQL(REFUSE_TRUNCATE, reverse_sql=ALLOW_TRUNCATE)]
