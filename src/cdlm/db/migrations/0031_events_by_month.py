"""Events partitioned by month of ``occurred_at`` (UTC).

``events`` becomes a range-partitioned table: one partition per calendar month (UTC), named
``events_YYYY_MM``, and ``events_default`` for moments no month covers yet. Existing rows are
moved; a month is made for each month that holds events and for this month and the next three.

What a partitioned table cannot enforce is kept another way:

- its key is a unique index on (id, occurred_at): a key must include the partition key. Ids are minted by
  the server (UUID 4), never taken from a client;
- a source's external id is unique across all months through ``event_keys`` (primary key the
  event id, unique (source_system, external_id)), written and deleted by triggers on
  ``events`` in the same statement as the event: a second event with the same external id fails
  with a unique violation whichever month it lands in, as the unique constraint did before.

Partitions are made and dropped by two functions owned by the owner and run with its rights
(SECURITY DEFINER, a fixed search path), which the application role may execute: so it can make
the months ahead and drop a month of events, and still cannot ALTER, TRUNCATE or DROP anything
else. A month gets exactly the grants of ``events``.
"""

from uuid import uuid4

from orjson import loads
from tortoise import fields, migrations
from tortoise.fields.data import JSON_DUMPS
from tortoise.migrations import operations as ops

from cdlm.db.roles import GRANT_APP_ROLE


class _StateOnly(ops.RemoveConstraint):
    """Only the models' state forgets the unique constraint: the table is rebuilt below."""

    async def database_forward(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None

    async def database_backward(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        return None


FUNCTIONS = r"""
CREATE FUNCTION public.cdlm_event_partition(month date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
DECLARE
    first timestamp := date_trunc('month', month::timestamp);
    lo timestamptz := first AT TIME ZONE 'UTC';
    hi timestamptz := (first + interval '1 month') AT TIME ZONE 'UTC';
    name text := 'events_' || to_char(first, 'YYYY_MM');
    grantee record;
BEGIN
    IF month IS NULL OR month < date '1900-01-01' OR month >= date '2200-01-01' THEN
        RAISE EXCEPTION 'months of events are between 1900 and 2199'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One maker at a time; a second one waits, then finds the month made.
    PERFORM pg_advisory_xact_lock(hashtextextended('cdlm.event_partitions', 0));
    IF EXISTS (
        SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'public.events'::regclass AND c.relname = name
    ) THEN
        RETURN false;
    END IF;
    IF to_regclass('public.' || quote_ident(name)) IS NOT NULL THEN
        RAISE EXCEPTION 'a table named % exists and is no month of events', name
            USING ERRCODE = 'duplicate_table';
    END IF;
    IF EXISTS (SELECT 1 FROM public.events_default WHERE occurred_at >= lo AND occurred_at < hi)
    THEN
        -- Events of that month wait in the default partition: they move into it (their keys
        -- leave and come back with them, in this transaction).
        CREATE TEMP TABLE cdlm_moving ON COMMIT DROP AS
            SELECT * FROM public.events_default WHERE occurred_at >= lo AND occurred_at < hi;
        DELETE FROM public.events_default WHERE occurred_at >= lo AND occurred_at < hi;
        EXECUTE format(
            'CREATE TABLE public.%I PARTITION OF public.events FOR VALUES FROM (%L) TO (%L)',
            name, lo, hi);
        INSERT INTO public.events SELECT * FROM pg_temp.cdlm_moving;
        DROP TABLE pg_temp.cdlm_moving;
    ELSE
        EXECUTE format(
            'CREATE TABLE public.%I PARTITION OF public.events FOR VALUES FROM (%L) TO (%L)',
            name, lo, hi);
    END IF;
    FOR grantee IN
        SELECT a.grantee::regrole::text AS role, string_agg(a.privilege_type, ', ') AS rights
        FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) AS a
        WHERE c.oid = 'public.events'::regclass AND a.grantee <> c.relowner AND a.grantee <> 0
        GROUP BY a.grantee
    LOOP
        EXECUTE format('GRANT %s ON public.%I TO %s', grantee.rights, name, grantee.role);
    END LOOP;
    RETURN true;
END
$$;

CREATE FUNCTION public.cdlm_drop_event_partition(name text) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF name IS NULL OR name !~ '^events_[0-9]{4}_[0-9]{2}$' THEN
        RAISE EXCEPTION 'not a month of events: %', name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (
        SELECT 1 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
        WHERE i.inhparent = 'public.events'::regclass AND c.relname = name
    ) THEN
        RETURN false;
    END IF;
    -- No event enters or leaves the month from here on; its keys go with it.
    EXECUTE format('LOCK TABLE public.%I IN SHARE MODE', name);
    EXECUTE format(
        'DELETE FROM public.event_keys AS k USING public.%I AS e '
        'WHERE e.external_id IS NOT NULL AND k.event_id = e.id', name);
    EXECUTE format('ALTER TABLE public.events DETACH PARTITION public.%I', name);
    EXECUTE format('DROP TABLE public.%I', name);
    RETURN true;
END
$$;

CREATE FUNCTION public.cdlm_event_keys() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$
BEGIN
    IF TG_OP <> 'INSERT' AND OLD.external_id IS NOT NULL THEN
        DELETE FROM public.event_keys WHERE event_id = OLD.id;
    END IF;
    IF TG_OP <> 'DELETE' AND NEW.external_id IS NOT NULL THEN
        INSERT INTO public.event_keys (event_id, source_system, external_id)
        VALUES (NEW.id, NEW.source_system, NEW.external_id);
    END IF;
    RETURN NULL;
END
$$;

REVOKE ALL ON FUNCTION public.cdlm_event_partition(date) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.cdlm_drop_event_partition(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION public.cdlm_event_keys() FROM PUBLIC;
"""

PARTITION = r"""
DO $$
DECLARE
    old_index record;
BEGIN
    ALTER TABLE public.events RENAME TO events_unpartitioned;
    FOR old_index IN
        SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
        WHERE i.indrelid = 'public.events_unpartitioned'::regclass
    LOOP
        EXECUTE format('ALTER INDEX public.%I RENAME TO %I',
            old_index.relname, left('old_' || old_index.relname, 63));
    END LOOP;
    CREATE TABLE public.events (
        LIKE public.events_unpartitioned
        INCLUDING COMMENTS INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION
    ) PARTITION BY RANGE (occurred_at);
    EXECUTE format('COMMENT ON TABLE public.events IS %L',
        obj_description('public.events_unpartitioned'::regclass, 'pg_class'));
END
$$;
CREATE TABLE events_default PARTITION OF events DEFAULT;
"""

MOVE = r"""
SELECT public.cdlm_event_partition(month) FROM (
    SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date AS month
    FROM events_unpartitioned
    UNION
    SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + ahead * interval '1 month')::date
    FROM generate_series(0, 3) AS ahead
) AS months ORDER BY month;
INSERT INTO events SELECT * FROM events_unpartitioned;
-- Indexes and the foreign key once the rows are in (built per month, faster than row by row).
-- The key of events: a unique index rather than a PRIMARY KEY constraint, whose copies on the
-- months `pg_restore --clean` cannot drop (an attached index it leaves to its table).
CREATE UNIQUE INDEX uid_events_id_occurred_at ON events (id, occurred_at);
ALTER TABLE events ADD CONSTRAINT events_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE;
CREATE INDEX idx_events_custome_291dbf ON events (customer_id, occurred_at);
CREATE INDEX idx_events_type_1b2909 ON events (type, occurred_at);
CREATE INDEX idx_events_custome_55f39f ON events (customer_id, type, occurred_at, id);
INSERT INTO event_keys (event_id, source_system, external_id)
    SELECT id, source_system, external_id FROM events_unpartitioned WHERE external_id IS NOT NULL;
DROP TABLE events_unpartitioned;
CREATE TRIGGER event_keys_added AFTER INSERT ON events
    FOR EACH ROW WHEN (NEW.external_id IS NOT NULL) EXECUTE FUNCTION public.cdlm_event_keys();
CREATE TRIGGER event_keys_removed AFTER DELETE ON events
    FOR EACH ROW WHEN (OLD.external_id IS NOT NULL) EXECUTE FUNCTION public.cdlm_event_keys();
CREATE TRIGGER event_keys_changed AFTER UPDATE OF id, source_system, external_id ON events
    FOR EACH ROW WHEN (
        OLD.external_id IS DISTINCT FROM NEW.external_id
        OR OLD.source_system IS DISTINCT FROM NEW.source_system OR OLD.id <> NEW.id
    ) EXECUTE FUNCTION public.cdlm_event_keys();
"""

UNMOVE = r"""
DROP TRIGGER event_keys_added ON events;
DROP TRIGGER event_keys_removed ON events;
DROP TRIGGER event_keys_changed ON events;
"""

NO_FUNCTIONS = r"""
DROP FUNCTION public.cdlm_event_partition(date);
DROP FUNCTION public.cdlm_drop_event_partition(text);
DROP FUNCTION public.cdlm_event_keys();
"""

UNPARTITION = r"""
CREATE TABLE events_unpartitioned (
    LIKE events INCLUDING COMMENTS INCLUDING DEFAULTS INCLUDING STORAGE INCLUDING COMPRESSION
);
INSERT INTO events_unpartitioned SELECT * FROM events;
DO $$
BEGIN
    EXECUTE format('COMMENT ON TABLE public.events_unpartitioned IS %L',
        obj_description('public.events'::regclass, 'pg_class'));
END
$$;
DROP TABLE events CASCADE;
ALTER TABLE events_unpartitioned RENAME TO events;
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id);
ALTER TABLE events ADD CONSTRAINT events_customer_id_fkey
    FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE;
ALTER TABLE events ADD CONSTRAINT uid_events_source__b4d839 UNIQUE (source_system, external_id);
CREATE INDEX idx_events_custome_291dbf ON events (customer_id, occurred_at);
CREATE INDEX idx_events_type_1b2909 ON events (type, occurred_at);
CREATE INDEX idx_events_custome_55f39f ON events (customer_id, type, occurred_at, id);
"""


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0030_ledger_keys_and_checkpoints")]

    initial = False

    operations = [
        ops.CreateModel(
            name="EventKey",
            fields=[
                (
                    "event_id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("source_system", fields.CharField(max_length=64)),
                ("external_id", fields.CharField(max_length=128)),
            ],
            options={
                "table": "event_keys",
                "app": "cdlm",
                "unique_together": (("source_system", "external_id"),),
                "pk_attr": "event_id",
                "table_description": "The source ids of events, each (source system, external id) "
                "once across all months.",
            },
            bases=["Model"],
        ),
        _StateOnly(model_name="Event", name=None, fields=["source_system", "external_id"]),
        ops.AddField(
            model_name="SweepEvidence",
            name="month_cursor",
            field=fields.CharField(
                null=True, description="The last month of events examined whole", max_length=7
            ),
        ),
        ops.AddField(
            model_name="SweepEvidence",
            name="months",
            field=fields.JSONField(
                default=list,
                description="Months of events disposed of whole (2026-01)",
                encoder=JSON_DUMPS,
                decoder=loads,
            ),
        ),
        ops.RunSQL(PARTITION, reverse_sql=UNPARTITION),
        ops.RunSQL(FUNCTIONS, reverse_sql=NO_FUNCTIONS),
        ops.RunSQL(MOVE, reverse_sql=UNMOVE),
        ops.RunSQL(GRANT_APP_ROLE, reverse_sql=ops.RunSQL.noop),
    ]
