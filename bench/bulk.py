"""Bulk loading for the benchmarks: numbered placeholder customers and COPY in chunks.

The analysis benchmarks time SQL over clear columns, so their customers need no profile:
``customers`` rows get a placeholder sealed profile that nothing they time ever opens.
``bench_customers (n, id)`` numbers them 0..N-1 so generated rows can name a customer by number.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

#: Rows per COPY (asyncpg streams each chunk; smaller ones only cost round trips).
COPY_CHUNK: Final = 250_000


async def placeholder_customers(connection: Any, customers: int, created: datetime) -> None:
    """``customers`` customers created at ``created``, numbered in ``bench_customers``."""
    await connection.execute("CREATE TABLE bench_customers (n int PRIMARY KEY, id uuid NOT NULL)")
    await connection.execute(
        "INSERT INTO bench_customers SELECT n, gen_random_uuid() "
        "FROM generate_series(0, $1 - 1) AS n",
        customers,
    )
    await connection.execute(
        "INSERT INTO customers (id, created_at, updated_at, lifecycle_stage, profile_sealed, "
        "present_fields, lineage, source_systems, completeness, validity, quality_score) "
        "SELECT id, $1, $1, 'customer', '\\x00'::bytea, '[]', '{}', '[\"shop\"]', 0, 1, 0 "
        "FROM bench_customers",
        created,
    )


async def copy_rows(connection: Any, table: str, rows: list[tuple[Any, ...]]) -> None:
    """``rows`` into ``table`` with COPY, :data:`COPY_CHUNK` at a time."""
    for offset in range(0, len(rows), COPY_CHUNK):
        await connection.copy_records_to_table(table, records=rows[offset : offset + COPY_CHUNK])
