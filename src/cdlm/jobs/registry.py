"""The scheduled jobs of cdlm, as data: what runs, when, under which lock, with which extras.

Each :class:`Job` is run by the CLI (``cdlm dsr tick``...), by its Lambda schedule and by
``cdlm worker``, always through :func:`cdlm.jobs.runner.run_job`: it holds the job's lock for
the whole run, so two runners (two workers, a worker and a Lambda schedule, the CLI) never run
one job at once; the second skips.

A job's ``run`` names its entry point, ``"module:function"``, imported only when the job runs
(so listing the jobs imports no heavy library and needs no extra). The function is async and
takes the keyword arguments its signature names among the fields of :class:`JobContext`
(``context`` for the whole of it): ``run(context)``, ``run(settings)`` and
``run(settings, budget_seconds=None)`` are all fine.

Adding a job is one entry in :data:`JOBS` (and, for Lambda, a one-line handler).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from cdlm.core.locks import lock_key

if TYPE_CHECKING:
    from cdlm.config import Settings

#: A module only the extra installs, per extra (``pip install 'cdlm[<extra>]'``).
EXTRA_MODULES: Mapping[str, str] = {"matching": "splink", "analytics": "scipy"}

#: Progress callback of a long job: (stage, done, total).
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Every:
    """Run every ``seconds`` (the first time as soon as the worker starts)."""

    seconds: float

    def first(self, now: datetime) -> datetime:
        """When a worker started at ``now`` first runs the job."""
        return now

    def next_after(self, started: datetime) -> datetime:
        """When to run again after a run that started at ``started``."""
        return started + timedelta(seconds=self.seconds)

    def describe(self) -> str:
        """``every hour``, ``every 1 s``."""
        named = {3600.0: "every hour", 86_400.0: "every day", 60.0: "every minute"}
        return named.get(float(self.seconds), f"every {self.seconds:g} s")


@dataclass(frozen=True)
class DailyAt:
    """Run once a day at ``at`` (UTC); a worker started after that time waits for the next."""

    at: time

    def first(self, now: datetime) -> datetime:
        """The next ``at`` from ``now`` (today's, if still to come)."""
        today = datetime.combine(now.date(), self.at, tzinfo=now.tzinfo)
        return today if today >= now else today + timedelta(days=1)

    def next_after(self, started: datetime) -> datetime:
        """The ``at`` of the day after ``started``'s (or of that day, if still to come)."""
        return self.first(started + timedelta(seconds=1))

    def describe(self) -> str:
        """``daily at 02:00 UTC``."""
        return f"daily at {self.at:%H:%M} UTC"


Schedule = Every | DailyAt


@dataclass(frozen=True)
class JobContext:
    """What a run gets: the installation's settings, how long it may take, the options of the
    command or Lambda event that started it, and where to show progress (the CLI)."""

    settings: Settings
    #: Seconds the run may take; a job that resumes stops within it and the next run resumes.
    budget_seconds: float | None = None
    #: Options of the run (``full``, ``train``, ``as_of``...), from the CLI or the Lambda event.
    options: Mapping[str, Any] = field(default_factory=dict)
    progress: Progress | None = None


@dataclass(frozen=True)
class Job:
    """One scheduled job."""

    #: Short name: the worker's ``--job`` choice and the key of :data:`JOBS`.
    name: str
    #: What the job does, in a few words (the worker's banner and log lines).
    title: str
    schedule: Schedule
    #: ``"module:function"`` of the async entry point (see the module's documentation).
    run: str
    #: Name of the PostgreSQL advisory lock held for the whole run.
    lock: str
    #: Seconds one run may take (see :attr:`JobContext.budget_seconds`); on Lambda, less the
    #: function's remaining time less ``margin_seconds``.
    budget_seconds: float | None = None
    #: Seconds a Lambda invocation keeps after the budget (to record and return).
    margin_seconds: float = 60.0
    #: Extras the job needs (``matching``, ``analytics``); without them it is skipped.
    extras: tuple[str, ...] = ()
    #: ``"module:function"`` turning the run's result into JSON (what the Lambda handler returns
    #: and the worker logs); by default a dict result as it is, a dataclass as its fields.
    summary: str | None = None
    #: The Lambda function scheduled to run it (serverless.yml), and the CLI command.
    lambda_function: str | None = None
    command: str | None = None

    @property
    def lock_key(self) -> int:
        """The 64-bit advisory lock key of :attr:`lock`."""
        return lock_key(self.lock)

    def missing_extras(self) -> tuple[str, ...]:
        """The extras this job needs that are not installed."""
        return tuple(
            extra for extra in self.extras if not _installed(EXTRA_MODULES.get(extra, extra))
        )

    def entry_point(self) -> Callable[..., Awaitable[Any]]:
        """The job's run function (imported now)."""
        function: Callable[..., Awaitable[Any]] = _resolve(self.run)
        return function

    async def call(self, context: JobContext) -> Any:
        """Run the entry point with the arguments it names from ``context``."""
        function = self.entry_point()
        offered = {f.name: getattr(context, f.name) for f in fields(context)}
        offered["context"] = context
        wanted = inspect.signature(function).parameters
        return await function(**{name: offered[name] for name in wanted if name in offered})

    def to_json(self, result: Any) -> dict[str, Any]:
        """The run's result as JSON-ready data."""
        convert: Callable[[Any], dict[str, Any]] = (
            _resolve(self.summary) if self.summary is not None else plain
        )
        return convert(result)


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a module blocked in sys.modules, a broken parent
        return False


def _resolve(reference: str) -> Any:
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def plain(value: Any) -> Any:
    """``value`` as JSON-ready data: dataclasses as dicts, enums as values, times in ISO 8601,
    ids and decimals as text."""
    import dataclasses
    import enum
    import uuid
    from datetime import date
    from decimal import Decimal

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, enum.Enum):
        return plain(value.value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


HOUR = 3600.0
DAY = 24 * HOUR

#: Every job, in the order the worker starts them.
JOBS: Mapping[str, Job] = {
    job.name: job
    for job in (
        Job(
            name="audit_sequencer",
            title="chaining read audit records",
            schedule=Every(1.0),
            run="cdlm.jobs.audit_sequencer:run",
            lock="cdlm.jobs.audit_sequencer",
            budget_seconds=50.0,
            margin_seconds=10.0,
            lambda_function="auditSequencer",
        ),
        Job(
            name="request_tick",
            title="dsr tick",
            schedule=Every(HOUR),
            run="cdlm.jobs.request_tick:run",
            lock="cdlm.jobs.request_tick",
            budget_seconds=600.0,
            lambda_function="dsrTick",
            command="cdlm dsr tick",
        ),
        Job(
            name="retention_sweep",
            title="retention sweep",
            schedule=Every(HOUR),
            run="cdlm.jobs.retention_sweep:run",
            lock="cdlm.jobs.retention_sweep",
            budget_seconds=HOUR - 300,
            summary="cdlm.jobs.retention_sweep:summary",
            lambda_function="retentionSweep",
            command="cdlm retention sweep",
        ),
        Job(
            name="match_run",
            title="match run",
            schedule=DailyAt(time(2, 0)),
            run="cdlm.jobs.match_run:run",
            lock="cdlm.jobs.match_run",
            budget_seconds=4 * HOUR,
            margin_seconds=90.0,
            extras=("matching",),
            summary="cdlm.matching.runs:evidence_json",
            lambda_function="matchRun",
            command="cdlm match run",
        ),
        Job(
            name="analytics_refresh",
            title="analytics refresh",
            schedule=DailyAt(time(3, 0)),
            run="cdlm.jobs.analytics_refresh:run",
            lock="cdlm.jobs.analytics_refresh",
            budget_seconds=2 * HOUR,
            extras=("analytics",),
            summary="cdlm.analytics.runs:evidence_json",
            lambda_function="analyticsRefresh",
            command="cdlm analytics refresh",
        ),
        Job(
            name="ledger_checkpoint",
            title="ledger checkpoint",
            schedule=Every(HOUR),
            run="cdlm.jobs.ledger_checkpoint:scheduled",
            lock="cdlm.jobs.ledger_checkpoint",
            budget_seconds=600.0,
            summary="cdlm.jobs.ledger_checkpoint:summary",
            lambda_function="ledgerCheckpoint",
            command="cdlm verify --checkpoint",
        ),
        Job(
            name="event_partitions",
            title="event partitions",
            schedule=Every(DAY),
            run="cdlm.jobs.event_partitions:scheduled",
            lock="cdlm.jobs.event_partitions",
            budget_seconds=600.0,
            summary="cdlm.jobs.event_partitions:summary",
            lambda_function="eventPartitions",
            command="cdlm event-partitions",
        ),
    )
}
