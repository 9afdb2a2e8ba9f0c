"""The application role's grants (the ``database roles`` migration applies them, and a restore
applies them again: a restored table gets the owner's default privileges, which include what
the ledgers refuse)."""

from __future__ import annotations

from typing import Any, Final

APP_ROLE_SETTING: Final = "cdlm.app_role"

GRANT_APP_ROLE: Final = """
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
    EXECUTE format(
        'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO %I', app);
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
    IF to_regclass('ledger_checkpoints') IS NOT NULL THEN
        EXECUTE format(
            'REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON ledger_checkpoints FROM %I',
            app);
    END IF;
    EXECUTE format('REVOKE INSERT, UPDATE, DELETE ON tortoise_migrations FROM %I', app);
    -- Months of events: made and dropped through the owner's functions only; the keys of
    -- events are written by their trigger only.
    IF to_regclass('public.event_keys') IS NOT NULL THEN
        EXECUTE format(
            'REVOKE INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER ON event_keys FROM %I',
            app);
        -- (a restore without ACLs recreates functions executable by PUBLIC)
        REVOKE ALL ON FUNCTION public.cdlm_event_partition(date),
            public.cdlm_drop_event_partition(text), public.cdlm_event_keys() FROM PUBLIC;
        EXECUTE format('GRANT EXECUTE ON FUNCTION public.cdlm_event_partition(date), '
            'public.cdlm_drop_event_partition(text) TO %I', app);
    END IF;
END
$$;
"""

REVOKE_APP_ROLE: Final = """
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


async def grant_app_role(connection: Any, app_role: str) -> None:
    """Give ``app_role`` exactly its privileges on the current tables (idempotent; it also
    takes back what the ledgers refuse). ``connection``: an asyncpg connection as the owner."""
    await connection.execute("SELECT set_config($1, $2, false)", APP_ROLE_SETTING, app_role)
    await connection.execute(GRANT_APP_ROLE)
