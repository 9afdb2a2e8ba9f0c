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

APP_ROLE_SETTING = "cdlm.app_role"

GRANT_APP_ROLE = """
DO $$
DECLARE
    app text := coalesce(nullif(current_setting('cdlm.app_role', true), ''), 'cdlm_app');
    existing pg_roles%ROWTYPE;
BEGIN
    SELECT * INTO existing FROM pg_roles WHERE rolname = app;
    IF NOT FOUND THEN
        EXECUTE format(
            'CREATE ROLE %I LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT '
            'NOREPLICATION NOBYPASSRLS', app);
    ELSIF existing.rolsuper OR existing.rolbypassrls OR pg_has_role(app, current_user, 'USAGE') THEN
        RAISE EXCEPTION 'the application role % may not be a superuser, bypass row security '
            'or act as the owner %', app, current_user USING ERRCODE = 'insufficient_privilege';
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), app);
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', app);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', app);
    EXECUTE format('GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO %I', app);
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES IN SCHEMA public '
        'GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO %I', app);
    EXECUTE format(
        'ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO %I', app);
    EXECUTE format(
        'REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER '
        'ON audit_entries, consent_entries FROM %I', app);
    EXECUTE format('REVOKE UPDATE, TRUNCATE, REFERENCES, TRIGGER ON audit_pending FROM %I', app);
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON tortoise_migrations FROM %I', app);
END
$$;
"""

REVOKE_APP_ROLE = """
DO $$
DECLARE
    app text := coalesce(nullif(current_setting('cdlm.app_role', true), ''), 'cdlm_app');
BEGIN
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = app) THEN
        EXECUTE format(
            'ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON TABLES FROM %I', app);
        EXECUTE format(
            'ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE ALL ON SEQUENCES FROM %I', app);
        EXECUTE format('REVOKE ALL ON ALL TABLES IN SCHEMA public FROM %I', app);
        EXECUTE format('REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM %I', app);
    END IF;
END
$$;
"""


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0027_quality_snapshots")]

    initial = False

    operations = [ops.RunSQL(GRANT_APP_ROLE, reverse_sql=REVOKE_APP_ROLE)]
