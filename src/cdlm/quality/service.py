"""The data quality report: aggregates over stored scores, present fields and refused values."""

from __future__ import annotations

from dataclasses import dataclass

from cdlm.db.reads import read_connection, replica_reads
from cdlm.quality.fields import COMPLETENESS_FIELDS, PROFILE_FIELDS

BUCKETS = 5


@dataclass(frozen=True)
class Report:
    """Counts and shares only: no personal values."""

    customers: int
    average_score: float | None
    score_buckets: list[tuple[float, float, int]]
    field_presence: list[tuple[str, int]]
    open_invalid: list[tuple[str, str, int]]
    by_source: list[tuple[str, int, float]]


@replica_reads
async def report() -> Report:
    """Compute the report with five aggregate queries. Erased customers, restricted ones
    (GDPR Art. 18: stored, not processed) and profiles merged into others are left out."""
    connection = read_connection()
    totals = await connection.execute_query_dict(
        'SELECT count(*) AS n, avg("quality_score") AS avg FROM "customers" WHERE '
        '"erased_at" IS NULL AND "restricted_at" IS NULL AND "merged_into_id" IS NULL'
    )
    buckets = await connection.execute_query_dict(
        'SELECT least(width_bucket("quality_score", 0, 1, $1), $1) AS b, count(*) AS n '
        'FROM "customers" WHERE "erased_at" IS NULL AND "restricted_at" IS NULL '
        'AND "merged_into_id" IS NULL GROUP BY b ORDER BY b',
        [BUCKETS],
    )
    presence = await connection.execute_query_dict(
        'SELECT f AS field, count(*) AS n FROM "customers", '
        'jsonb_array_elements_text("present_fields") AS f '
        'WHERE "erased_at" IS NULL AND "restricted_at" IS NULL AND "merged_into_id" IS NULL '
        "GROUP BY f"
    )
    invalid = await connection.execute_query_dict(
        'SELECT "field", "code", count(*) AS n FROM "invalid_values" '
        'WHERE "resolved_at" IS NULL AND "customer_id" IN (SELECT "id" FROM "customers" '
        'WHERE "erased_at" IS NULL AND "restricted_at" IS NULL AND "merged_into_id" IS NULL) '
        'GROUP BY "field", "code" ORDER BY n DESC, "field"'
    )
    sources = await connection.execute_query_dict(
        'SELECT s AS source, count(*) AS n, avg("quality_score") AS avg FROM "customers", '
        'jsonb_array_elements_text("source_systems") AS s '
        'WHERE "erased_at" IS NULL AND "restricted_at" IS NULL AND "merged_into_id" IS NULL '
        "GROUP BY s ORDER BY n DESC, s"
    )
    counts = {int(row["b"]): int(row["n"]) for row in buckets}
    width = 1 / BUCKETS
    present = {row["field"]: int(row["n"]) for row in presence}
    ordered_fields = list(COMPLETENESS_FIELDS) + [
        f for f in PROFILE_FIELDS if f not in COMPLETENESS_FIELDS
    ]
    average = totals[0]["avg"]
    return Report(
        customers=int(totals[0]["n"]),
        average_score=round(float(average), 4) if average is not None else None,
        score_buckets=[
            (round((b - 1) * width, 2), round(b * width, 2), counts.get(b, 0))
            for b in range(1, BUCKETS + 1)
        ],
        field_presence=[(name, present.get(name, 0)) for name in ordered_fields],
        open_invalid=[(row["field"], row["code"], int(row["n"])) for row in invalid],
        by_source=[(row["source"], int(row["n"]), round(float(row["avg"]), 4)) for row in sources],
    )
