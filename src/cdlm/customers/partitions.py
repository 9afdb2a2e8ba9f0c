"""Months of events: the partitions of ``events``.

``events`` is partitioned by range of ``occurred_at``: one table per calendar month in UTC,
``events_YYYY_MM``, and ``events_default`` for moments no month covers. Months are made ahead
by the ``event_partitions`` job (:mod:`cdlm.jobs.event_partitions`), which also gives a month of
its own to events waiting in the default partition, and dropped whole by the retention sweep
when a policy disposes of every event in them (:mod:`cdlm.retention.sweep`).

Making and dropping a month is done by two functions of the owner that the application role
may execute (``cdlm_event_partition``, ``cdlm_drop_event_partition``): the application role
owns no table, so it cannot alter or truncate any, the ledgers included.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from tortoise.connection import get_connection

#: Names of the monthly partitions (the default partition is ``events_default``).
MONTH_NAME = re.compile(r"events_(\d{4})_(\d{2})")
DEFAULT_PARTITION = "events_default"

PARTITIONS = """
SELECT c.relname AS name FROM pg_inherits AS i JOIN pg_class AS c ON c.oid = i.inhrelid
WHERE i.inhparent = 'public.events'::regclass
"""


def month_start(moment: datetime | date) -> date:
    """The first day of the month (UTC) ``moment`` falls in."""
    if isinstance(moment, datetime):
        moment = moment.astimezone(UTC).date()
    return moment.replace(day=1)


def next_month(month: date) -> date:
    """The first day of the month after ``month``."""
    return date(month.year + month.month // 12, month.month % 12 + 1, 1)


@dataclass(frozen=True, order=True)
class Month:
    """One monthly partition: events with ``start <= occurred_at < end``."""

    first_day: date
    name: str

    @property
    def start(self) -> datetime:
        return datetime(self.first_day.year, self.first_day.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        after = next_month(self.first_day)
        return datetime(after.year, after.month, 1, tzinfo=UTC)

    @property
    def label(self) -> str:
        """``2026-01``."""
        return f"{self.first_day:%Y-%m}"

    @classmethod
    def named(cls, name: str) -> Month | None:
        """The month a partition's name stands for, or None (the default partition)."""
        match = MONTH_NAME.fullmatch(name)
        if match is None:
            return None
        return cls(date(int(match.group(1)), int(match.group(2)), 1), name)


async def months() -> list[Month]:
    """The monthly partitions, oldest first."""
    rows = await get_connection("default").execute_query_dict(PARTITIONS)
    found = [Month.named(row["name"]) for row in rows]
    return sorted(m for m in found if m is not None)


def name_of(month: date) -> str:
    """The partition name of the month ``month`` falls in: ``events_2026_01``."""
    return f"events_{month:%Y_%m}"


async def make_month(month: date) -> bool:
    """Make the partition of ``month`` (:func:`name_of`) if missing; events of that month
    waiting in the default partition move into it. True when this call made it. Idempotent;
    concurrent calls make it once."""
    rows = await get_connection("default").execute_query_dict(
        "SELECT public.cdlm_event_partition($1::date) AS made", [month_start(month)]
    )
    return bool(rows[0]["made"])


async def months_waiting() -> list[date]:
    """The months of the events in the default partition (a month with no partition yet)."""
    rows = await get_connection("default").execute_query_dict(
        "SELECT DISTINCT date_trunc('month', occurred_at AT TIME ZONE 'UTC')::date AS month "  # noqa: S608
        f"FROM {DEFAULT_PARTITION} ORDER BY month"
    )
    return [row["month"] for row in rows]


def months_from(first: date, count: int) -> list[date]:
    """``count`` months starting with the month of ``first``."""
    found, month = [], month_start(first)
    for _ in range(count):
        found.append(month)
        month = next_month(month)
    return found


# ------------------------------------------------------------------- whole-month disposal


@dataclass(frozen=True)
class MonthContents:
    """What a month holds, as a retention policy sees it."""

    total: int
    outside: int  # events the policy does not govern (another type)
    held: int  # events a legal hold keeps
    first_at: datetime | None
    last_at: datetime | None


async def lock_month(month: Month) -> None:
    """Until the transaction ends, no event enters, leaves or changes in ``month``."""
    await get_connection("default").execute_query(
        f'LOCK TABLE "{month.name}" IN SHARE MODE'  # name checked by Month.named
    )


async def contents(
    month: Month,
    *,
    event_type: str | None,
    excluded_types: Iterable[str],
    held_customers: Iterable[uuid.UUID],
    held_types: Iterable[str] | None,
) -> MonthContents:
    """Count the month's events: all, those outside the policy (``event_type``: only that type
    is governed; else every type but ``excluded_types``), and those held (on a customer in
    ``held_customers``, or of a type in ``held_types``; None: every type is held)."""
    rows = await get_connection("default").execute_query_dict(
        "SELECT count(*) AS total, "  # noqa: S608 - a checked partition name
        "count(*) FILTER (WHERE NOT (($1::text IS NULL OR type = $1) "
        "AND type <> ALL($2::text[]))) AS outside, "
        "count(*) FILTER (WHERE customer_id = ANY($3::uuid[]) OR $4::text[] IS NULL "
        "OR type = ANY($4::text[])) AS held, "
        f'min(occurred_at) AS first_at, max(occurred_at) AS last_at FROM "{month.name}"',
        [
            event_type,
            list(excluded_types),
            list(held_customers),
            None if held_types is None else list(held_types),
        ],
    )
    row = rows[0]
    return MonthContents(row["total"], row["outside"], row["held"], row["first_at"], row["last_at"])


async def chained_digest(month: Month, digest: str, category: str) -> str:
    """SHA-256 of ``digest`` then ``\\n<category>:<id>`` for each event in id order: what the
    sweep's evidence chains for a batch of these events, computed where they are."""
    rows = await get_connection("default").execute_query_dict(
        "SELECT encode(sha256(convert_to($1::text || coalesce(string_agg("  # noqa: S608 - as above
        "E'\\n' || $2::text || ':' || id::text, '' ORDER BY id), ''), 'UTF8')), 'hex') AS digest "
        f'FROM "{month.name}"',
        [digest, category],
    )
    return str(rows[0]["digest"])


async def ids_in(month: Month, after: uuid.UUID | None, limit: int) -> list[uuid.UUID]:
    """Up to ``limit`` event ids of the month, in id order after ``after``."""
    rows: list[dict[str, Any]] = await get_connection("default").execute_query_dict(
        f'SELECT id FROM "{month.name}" WHERE $1::uuid IS NULL OR id > $1 '  # noqa: S608
        "ORDER BY id LIMIT $2",
        [after, limit],
    )
    return [row["id"] for row in rows]


async def drop_month(month: Month) -> bool:
    """Detach and drop the month with every event in it (and their keys); False when it was
    gone already."""
    rows = await get_connection("default").execute_query_dict(
        "SELECT public.cdlm_drop_event_partition($1) AS dropped", [month.name]
    )
    return bool(rows[0]["dropped"])
