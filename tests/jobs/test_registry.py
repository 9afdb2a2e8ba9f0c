"""The registry's rules: schedules, backoff, choosing jobs, calling entry points."""

from __future__ import annotations

import importlib
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pytest

from cdlm.config import load_settings
from cdlm.jobs import worker
from cdlm.jobs.registry import JOBS, DailyAt, Every, JobContext, plain
from tests.jobs import support

pytestmark = pytest.mark.pure

NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_an_interval_runs_at_start_then_every_interval_after_each_start() -> None:
    hourly = Every(3600)
    assert hourly.first(NOON) == NOON
    assert hourly.next_after(NOON) == NOON + timedelta(hours=1)
    assert (hourly.describe(), Every(0.2).describe()) == ("every hour", "every 0.2 s")


def test_a_daily_job_waits_for_its_time_and_then_the_next_days() -> None:
    at_two = DailyAt(time(2, 0))
    assert at_two.first(NOON) == datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    early = datetime(2026, 12, 1, 1, 59, tzinfo=UTC)
    assert at_two.first(early) == datetime(2026, 12, 1, 2, 0, tzinfo=UTC)
    assert at_two.first(datetime(2026, 12, 1, 2, 0, tzinfo=UTC)) == datetime(
        2026, 12, 1, 2, 0, tzinfo=UTC
    )
    ran = datetime(2026, 12, 1, 2, 0, 0, tzinfo=UTC)
    assert at_two.next_after(ran) == datetime(2026, 12, 2, 2, 0, tzinfo=UTC)
    assert at_two.describe() == "daily at 02:00 UTC"


def test_backoff_doubles_up_to_its_cap_with_jitter_in_the_upper_half() -> None:
    low = worker.Backoff(base=1.0, cap=60.0, random=lambda: 0.0)
    high = worker.Backoff(base=1.0, cap=60.0, random=lambda: 1.0)
    assert [low.delay(n) for n in (1, 2, 3, 4, 7, 8, 50)] == [0.5, 1, 2, 4, 30, 30, 30]
    assert [high.delay(n) for n in (1, 2, 3, 4, 7, 8, 50)] == [1, 2, 4, 8, 60, 60, 60]
    drawn = {worker.Backoff().delay(3) for _ in range(50)}
    assert all(2 <= d <= 4 for d in drawn)
    assert len(drawn) > 1


def test_the_registry_names_distinct_locks_and_its_entry_points_import() -> None:
    assert list(JOBS)[:5] == [
        "audit_sequencer",
        "request_tick",
        "retention_sweep",
        "match_run",
        "analytics_refresh",
    ]
    locks = {j.lock for j in JOBS.values()}
    assert len(locks) == len({j.lock_key for j in JOBS.values()}) == len(JOBS)
    for job in JOBS.values():
        assert job.name == next(k for k, v in JOBS.items() if v is job)
        if not job.missing_extras():
            assert callable(job.entry_point())
            if job.summary:
                module, _, name = job.summary.partition(":")
                assert callable(getattr(importlib.import_module(module), name))


def test_choosing_jobs_by_name() -> None:
    assert [j.name for j in worker.select(["match_run", "request_tick"])] == [
        "match_run",
        "request_tick",
    ]
    chosen = worker.select((), ["audit_sequencer", "match_run"])
    assert [j.name for j in chosen] == [
        "request_tick",
        "retention_sweep",
        "analytics_refresh",
        "ledger_checkpoint",
        "event_partitions",
    ]
    with pytest.raises(KeyError, match="nightly"):
        worker.select(["nightly"])
    faster = worker.with_interval(worker.select(), "audit_sequencer", 0.2)
    assert faster[0].schedule == Every(0.2)
    assert faster[1:] == list(JOBS.values())[1:]


def test_the_banner_groups_jobs_of_one_schedule() -> None:
    line = worker.describe(worker.with_interval(worker.select(), "audit_sequencer", 0.2))
    assert line == (
        "chaining read audit records every 0.2 s; dsr tick, retention sweep and ledger "
        "checkpoint every hour; match run daily at 02:00 UTC; analytics refresh daily at "
        "03:00 UTC; event partitions every day"
    )


def test_a_job_whose_extra_is_missing_is_set_aside() -> None:
    needs = support.job("needs_extra", "counted", extras=("no_such_extra_module",))
    plain_job = support.job("plain", "counted")
    assert needs.missing_extras() == ("no_such_extra_module",)
    assert worker.available([needs, plain_job]) == ([plain_job], [needs])


async def test_the_entry_point_gets_the_arguments_it_names(tmp_path: Path) -> None:
    settings = load_settings({"CDLM_DATA_DIR": str(tmp_path)})
    probe = support.reset()
    probe.gate.set()
    held = support.job("held", "held")
    assert await held.call(JobContext(settings, 12.5)) == {"entered": 1}
    assert probe.budgets == [12.5]
    counted = support.job("counted", "counted")
    result = await counted.call(JobContext(settings, None, {"full": True}))
    assert result == {"runs": 2, "options": {"full": True}}
    with pytest.raises(RuntimeError, match="failed"):
        await support.job("failing", "failing").call(JobContext(settings))


def test_results_become_plain_json() -> None:
    from decimal import Decimal
    from enum import Enum
    from uuid import UUID

    class Colour(Enum):
        RED = "red"

    ident = UUID(int=7)
    assert plain({"a": [Colour.RED, ident, Decimal("1.50"), NOON, None, (1, 2.5)]}) == {
        "a": ["red", str(ident), "1.50", NOON.isoformat(), None, [1, 2.5]]
    }
