"""The dashboard's SQL: one statement per series (or group of series), over clear columns only.

Every statement takes the period and its buckets as its first parameters: ``$1`` start and
``$2`` end of the half-open period ``[start, end)``, ``$3`` the ``date_trunc`` unit (``day``,
``week``, ``month``). Buckets are made by ``generate_series`` over UTC wall time, so a day is a
UTC day, a week starts on Monday (ISO) and a month on its first day; a bucket without rows is
there with 0 (the series are left-joined onto the buckets, keys crossed with every bucket).
Customers left out of analysis (erased, restricted, merged into another profile) are left out
here as the analytics run leaves them out.
"""

from __future__ import annotations

from typing import Final

from cdlm.customers.models import ANALYSABLE

#: The analytics run's rule for a customer who may be counted (``c`` is ``customers``).
COUNTED: Final = ANALYSABLE
#: The same rule for an event ``e`` (an anti-join on the few customers left out: cheaper than
#: joining every customer when only the event's own columns are read).
EVENT_COUNTED: Final = (
    "NOT EXISTS (SELECT 1 FROM customers x WHERE x.id = e.customer_id AND (x.erased_at IS NOT "
    "NULL OR x.restricted_at IS NOT NULL OR x.merged_into_id IS NOT NULL))"
)


def bucket_of(column: str) -> str:
    """The start (timestamptz) of the UTC bucket holding ``column``."""
    return f"(date_trunc($3::text, {column} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC')"


#: Every bucket of the period: ``start`` (timestamptz) and ``stop`` (its end, the period's end
#: for the last one).
BUCKETS: Final = """buckets AS (
    SELECT b AT TIME ZONE 'UTC' AS start,
           least((b + ('1 ' || $3::text)::interval) AT TIME ZONE 'UTC', $2::timestamptz) AS stop
    FROM generate_series(date_trunc($3::text, $1::timestamptz AT TIME ZONE 'UTC'),
                         ($2::timestamptz AT TIME ZONE 'UTC') - interval '1 microsecond',
                         ('1 ' || $3::text)::interval) AS b
)"""

_KEYED: Final = """
keys AS (SELECT DISTINCT key FROM counted)
SELECT k.key, b.start, coalesce(n.value, 0) AS value
FROM keys k CROSS JOIN buckets b
LEFT JOIN counted n ON n.key IS NOT DISTINCT FROM k.key AND n.start = b.start
ORDER BY k.key NULLS LAST, b.start
"""

NEW_CUSTOMERS: Final = f"""
WITH {BUCKETS},
counted AS (
    SELECT a.acquisition_source AS key, {bucket_of("c.created_at")} AS start, count(*) AS value
    FROM customers c LEFT JOIN customer_attributes a ON a.customer_id = c.id
    WHERE c.created_at >= $1 AND c.created_at < $2 AND {COUNTED}
    GROUP BY 1, 2
),{_KEYED}"""  # noqa: S608 (constants only)

ACTIVE_CUSTOMERS: Final = f"""
WITH {BUCKETS},
counted AS (
    SELECT {bucket_of("e.occurred_at")} AS start, count(DISTINCT e.customer_id) AS value
    FROM events e JOIN customers c ON c.id = e.customer_id
    WHERE e.occurred_at >= $1 AND e.occurred_at < $2 AND {COUNTED}
    GROUP BY 1
)
SELECT b.start, coalesce(n.value, 0) AS value
FROM buckets b LEFT JOIN counted n ON n.start = b.start ORDER BY b.start
"""  # noqa: S608 (constants only)

EVENTS_BY_TYPE: Final = f"""
WITH {BUCKETS},
counted AS (
    SELECT e.type AS key, {bucket_of("e.occurred_at")} AS start, count(*) AS value
    FROM events e
    WHERE e.occurred_at >= $1 AND e.occurred_at < $2 AND {EVENT_COUNTED}
    GROUP BY 1, 2
),{_KEYED}"""  # noqa: S608 (constants only)

#: ``$4`` purchase event types, ``$5``/``$6`` currencies and their rates to the reporting
#: currency, ``$7`` the reporting currency (of amounts without a currency). As the analytics
#: run counts them: an amount in a currency without a rate is left out and counted.
REVENUE: Final = f"""
WITH {BUCKETS},
rates (currency, rate) AS (SELECT * FROM unnest($5::text[], $6::numeric[])),
counted AS (
    SELECT {bucket_of("e.occurred_at")} AS start, count(*) AS purchases,
           sum(e.amount * r.rate) AS amount,
           count(*) FILTER (WHERE e.amount IS NOT NULL AND r.rate IS NULL) AS unconverted
    FROM events e
    LEFT JOIN rates r ON r.currency = coalesce(e.currency, $7)
    WHERE e.type = ANY($4::text[]) AND e.occurred_at >= $1 AND e.occurred_at < $2
      AND {EVENT_COUNTED}
    GROUP BY 1
)
SELECT b.start, coalesce(n.amount, 0) AS amount, coalesce(n.purchases, 0) AS purchases,
       coalesce(n.unconverted, 0) AS unconverted
FROM buckets b LEFT JOIN counted n ON n.start = b.start ORDER BY b.start
"""  # noqa: S608 (constants only)

#: ``$4`` purpose ids, ``$5`` the granted decision. Per purpose and bucket, at the bucket's end:
#: counted customers whose latest decision by then grants the purpose, and counted customers
#: created by then (the consent service's opt-in rate, as it stood). Each decision changes the
#: number of grants by +1, -1 or 0 against the pair's previous decision; the number in force at
#: a moment is the running sum of those changes.
OPT_IN: Final = f"""
WITH {BUCKETS},
counted_customers AS (
    SELECT c.id, c.created_at FROM customers c WHERE c.created_at < $2 AND {COUNTED}
),
changes AS (
    SELECT e.purpose_id, e.decided_at,
           (e.decision = $5)::int - coalesce(lag((e.decision = $5)::int) OVER (
               PARTITION BY e.customer_id, e.purpose_id ORDER BY e.sequence), 0) AS delta
    FROM consent_entries e JOIN counted_customers c ON c.id = e.customer_id
    WHERE e.decided_at < $2 AND e.purpose_id = ANY($4::uuid[])
),
grants_before AS (
    SELECT purpose_id, sum(delta) AS n FROM changes WHERE decided_at < $1 GROUP BY 1
),
grants AS (
    SELECT purpose_id, {bucket_of("decided_at")} AS start, sum(delta) AS n
    FROM changes WHERE decided_at >= $1 GROUP BY 1, 2
),
customers_before AS (SELECT count(*) AS n FROM counted_customers WHERE created_at < $1),
arrivals AS (
    SELECT {bucket_of("created_at")} AS start, count(*) AS n
    FROM counted_customers WHERE created_at >= $1 GROUP BY 1
),
purposes AS (SELECT * FROM unnest($4::uuid[]) AS p (id))
SELECT p.id AS purpose_id, b.start,
       coalesce(gb.n, 0) + sum(coalesce(g.n, 0)) OVER running AS granted,
       (SELECT n FROM customers_before) + sum(coalesce(a.n, 0)) OVER running AS customers
FROM purposes p CROSS JOIN buckets b
LEFT JOIN grants_before gb ON gb.purpose_id = p.id
LEFT JOIN grants g ON g.purpose_id = p.id AND g.start = b.start
LEFT JOIN arrivals a ON a.start = b.start
WINDOW running AS (PARTITION BY p.id ORDER BY b.start)
ORDER BY p.id, b.start
"""  # noqa: S608 (constants only)

#: ``$4`` the completed status. Requests received, completed, and completed by their due date
#: (the date the request's legal clock gave when it closed: pauses and extension included).
#: Every request counts, whoever it is about: these are the controller's obligations.
REQUESTS: Final = f"""
WITH {BUCKETS},
received AS (
    SELECT {bucket_of("received_at")} AS start, count(*) AS n FROM dsr_requests
    WHERE received_at >= $1 AND received_at < $2 GROUP BY 1
),
completed AS (
    SELECT {bucket_of("completed_at")} AS start, count(*) AS n,
           count(*) FILTER (WHERE completed_at <= due_at) AS on_time
    FROM dsr_requests
    WHERE status = $4 AND completed_at >= $1 AND completed_at < $2 GROUP BY 1
)
SELECT b.start, coalesce(r.n, 0) AS received, coalesce(c.n, 0) AS completed,
       coalesce(c.on_time, 0) AS on_time
FROM buckets b LEFT JOIN received r ON r.start = b.start LEFT JOIN completed c ON c.start = b.start
ORDER BY b.start
"""  # noqa: S608 (constants only)

#: Records disposed of per retention category, by the as-of moment of the sweep that did it.
DISPOSALS: Final = f"""
WITH {BUCKETS},
counted AS (
    SELECT ev.category AS key, {bucket_of("r.as_of")} AS start, sum(ev.disposed) AS value
    FROM retention_sweep_evidence ev JOIN retention_sweep_runs r ON r.id = ev.run_id
    WHERE r.as_of >= $1 AND r.as_of < $2
    GROUP BY 1, 2
),{_KEYED}"""  # noqa: S608 (constants only)

#: The latest quality snapshot of each bucket (none: nulls).
SNAPSHOTS: Final = f"""
WITH {BUCKETS},
picked AS (
    SELECT DISTINCT ON (1) {bucket_of("taken_at")} AS start, customers, average_score,
           field_presence, open_refused
    FROM quality_snapshots WHERE taken_at >= $1 AND taken_at < $2
    ORDER BY 1, taken_at DESC, id DESC
)
SELECT b.start, p.customers, p.average_score, p.field_presence, p.open_refused
FROM buckets b LEFT JOIN picked p ON p.start = b.start ORDER BY b.start
"""  # noqa: S608 (constants only)
