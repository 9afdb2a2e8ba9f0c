from tortoise import fields, migrations
from tortoise.migrations import operations as ops

# Each stored rule says whether its clock stops while the requester verifies (GDPR, UK GDPR) or
# runs from receipt (CCPA: 11 CCR 7021(a); LGPD).
PAUSE_RULES = """
UPDATE dsr_requests
SET clock_rule = clock_rule::jsonb
    || jsonb_build_object('pause_while_waiting', jurisdiction IN ('gdpr', 'uk_gdpr'))
WHERE NOT (clock_rule::jsonb ? 'pause_while_waiting');
"""
# CCPA and LGPD requests were paused while they waited for verification: their due dates are
# counted again from receipt (months first, then days, as the code does; in UTC).
RUN_FROM_RECEIPT = """
WITH rule AS (
    SELECT id, extended,
        (clock_rule::jsonb ->> 'months')::int AS months,
        (clock_rule::jsonb ->> 'days')::int AS days,
        (clock_rule::jsonb ->> 'extension_months')::int AS extension_months,
        (clock_rule::jsonb ->> 'extension_days')::int AS extension_days,
        received_at AT TIME ZONE 'UTC' AS received
    FROM dsr_requests
    WHERE jurisdiction IN ('ccpa', 'lgpd') AND jsonb_array_length(pauses::jsonb) > 0
), base AS (
    SELECT id, extended, extension_months, extension_days,
        received + make_interval(months => months) + make_interval(days => days) AS due
    FROM rule
)
UPDATE dsr_requests AS r
SET pauses = '[]'::jsonb,
    due_at = (
        CASE WHEN base.extended
            THEN base.due + make_interval(months => base.extension_months)
                + make_interval(days => base.extension_days)
            ELSE base.due
        END
    ) AT TIME ZONE 'UTC'
FROM base WHERE r.id = base.id;
"""
CLOCK_PAUSED = """
UPDATE dsr_requests
SET clock_paused = jsonb_array_length(pauses::jsonb) > 0
    AND (pauses::jsonb -> -1 ->> 1) IS NULL;
"""


class Migration(migrations.Migration):
    dependencies = [("cdlm", "0012_identity_conflicts")]

    initial = False

    operations = [
        # Added with a database default that fills the rows already there (set right below),
        # then dropped again, as the model has none.
        ops.AddField(
            model_name="DataSubjectRequest",
            name="clock_paused",
            field=fields.BooleanField(
                default=False, db_default=False, description="The clock is stopped now"
            ),
        ),
        ops.AlterField(
            model_name="DataSubjectRequest",
            name="clock_paused",
            field=fields.BooleanField(default=False, description="The clock is stopped now"),
        ),
        ops.RunSQL(PAUSE_RULES, reverse_sql="SELECT 1;"),
        ops.RunSQL(RUN_FROM_RECEIPT, reverse_sql="SELECT 1;"),
        ops.RunSQL(CLOCK_PAUSED, reverse_sql="SELECT 1;"),
    ]
