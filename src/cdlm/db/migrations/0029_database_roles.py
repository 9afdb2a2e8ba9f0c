"""The application role: what the API, the jobs and the commands may do once migrated.

Migrations run as the owner (the role that connects with ``CDLM_DATABASE_OWNER_URL``, or the
embedded server's superuser): it owns every table and may alter it. The application connects as
the role named by ``CDLM_DATABASE_APP_ROLE`` (passed to the migration as the ``cdlm.app_role``
setting of its connections, ``cdlm_app`` by default). That role is created here when missing
(LOGIN, no password: the operator gives it one, or IAM authentication) and gets exactly:

- SELECT, INSERT, UPDATE, DELETE on the ordinary tables, USAGE and SELECT on the sequences, now
  and on every table and sequence the owner creates later (default privileges);
- SELECT and INSERT only on the ledgers ``audit_entries`` and ``consent_entries``; SELECT,
  INSERT and DELETE on the read-record inbox ``audit_pending`` (its trigger lets a row leave it
  only once chained);
- SELECT only on the migration history.

Owning nothing, it cannot ALTER, DROP, TRUNCATE or disable a trigger of any table, and (with
CREATE on the schema public revoked from PUBLIC, as PostgreSQL 15 and later do already) it
cannot create tables. A later migration adding a ledger revokes UPDATE and DELETE on it.
Idempotent: re-running it grants the same privileges to an existing role.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

from cdlm.db.roles import GRANT_APP_ROLE, REVOKE_APP_ROLE


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0028_erasure_register")]

    initial = False

    operations = [ops.RunSQL(GRANT_APP_ROLE, reverse_sql=REVOKE_APP_ROLE)]
