"""The ``cdlm`` command: serve, worker, migrate, bootstrap, import, analytics refresh,
backup, restore, reapply-erasures, makemigrations, export-schema."""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

from cdlm.config import ConfigError, DatabaseTarget, Settings, load_settings
from cdlm.core.errors import Conflict, FieldIssue, ValidationFailed
from cdlm.db.errors import DatabaseUnavailable

if TYPE_CHECKING:
    from cdlm.auth.service import Bootstrap
    from cdlm.insight.report import FunnelSection

T = TypeVar("T")

cli = typer.Typer(
    name="cdlm",
    help="cdlm: customer data lifecycle management (GraphQL API).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _matching_installed() -> bool:
    """True when the ``matching`` extra (Splink) is installed."""
    import importlib.util

    return importlib.util.find_spec("splink") is not None


def _analytics_installed() -> bool:
    """True when the ``analytics`` extra (scipy) is installed."""
    import importlib.util

    return importlib.util.find_spec("scipy") is not None


def _fail(message: str, code: int = 1) -> NoReturn:
    typer.echo(f"cdlm: {message}", err=True)
    raise typer.Exit(code)


def _settings() -> Settings:
    from cdlm.customers.attributes import check_enrichers

    try:
        settings = load_settings()
        check_enrichers()
    except ConfigError as error:
        _fail(f"configuration error: {error}", 2)
    return settings


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    try:
        return asyncio.run(coroutine)
    except DatabaseUnavailable as error:
        _fail(str(error))
    except ConfigError as error:
        _fail(f"configuration error: {error}", 2)


LOCAL_ADMIN_EMAIL = "admin@example.com"


def _print_bootstrap(result: Bootstrap) -> None:
    typer.echo(f"Admin user:  {result.user.email}")
    typer.echo(f"Password:    {result.password}")
    typer.echo(f"API key:     {result.api_key}")
    typer.echo("Both are shown only now: store them (change the password with changePassword).")
    typer.echo(
        f'In GraphiQL, open "Headers" and paste: {{"Authorization": "Bearer {result.api_key}"}}'
    )


async def _prepare_database(
    settings: Settings, target: DatabaseTarget, embedded: bool
) -> Bootstrap | None:
    """Make ``target`` ready to serve: migrated (embedded only) and its installation recorded.

    An empty embedded database is also bootstrapped (first admin and API key), and the result
    returned so it can be shown once.
    """
    from cdlm.auth.service import bootstrap, needs_bootstrap
    from cdlm.auth.settings import auth_settings
    from cdlm.db.lifecycle import (
        app_role_target,
        apply_migrations,
        close_orm,
        ensure_database,
        init_orm,
        migration_status,
        server_version,
    )
    from cdlm.system.service import ensure_installation

    timeout = settings.db_connect_timeout
    if embedded:  # migrated as the owner (the embedded superuser), served as the app role
        await ensure_database(target, timeout)
        for name in await apply_migrations(target, timeout, app_role=settings.database_app_role):
            typer.echo(f"applied migration {name}")
        target = app_role_target(target, settings.database_app_role)
    else:
        await server_version(target, timeout)
        pending = (await migration_status(target)).pending
        if pending:
            raise DatabaseUnavailable(
                f"{len(pending)} migration(s) not applied to {target.safe_description}; "
                "run `cdlm migrate` first"
            )
    context = await init_orm(target, settings)
    try:
        await ensure_installation()
        if embedded and await needs_bootstrap():
            return await bootstrap(LOCAL_ADMIN_EMAIL, "Local admin", auth_settings(settings))
        return None
    finally:
        await close_orm(context)


def _quiet_server_class() -> type[Any]:
    import uvicorn

    class QuietServer(uvicorn.Server):
        """Uvicorn server that stops cleanly on Ctrl+C instead of re-raising the signal."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            with super().capture_signals():
                yield
                self._captured_signals.clear()

    return QuietServer


@cli.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on [CDLM_HOST].")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on [CDLM_PORT].")] = None,
    with_worker: Annotated[
        bool,
        typer.Option(
            "--with-worker",
            help="Also run `cdlm worker` on the same database, in a process of its own (every "
            "job but the audit sequencer, which the server runs itself).",
        ),
    ] = False,
) -> None:
    """Run the API locally (with an embedded PostgreSQL unless DATABASE_URL is set)."""
    import uvicorn

    from cdlm.app import create_app
    from cdlm.core.logs import configure_logging
    from cdlm.db.embedded import EmbeddedPostgres
    from cdlm.db.lifecycle import app_role_target

    settings = _settings()
    configure_logging(settings.log_level)
    listen_host = host or settings.host
    listen_port = port or settings.port
    embedded = (
        EmbeddedPostgres(settings.embedded_pgdata) if settings.uses_embedded_database else None
    )
    try:
        if embedded is not None:
            try:
                target = embedded.start()
            except DatabaseUnavailable as error:
                _fail(str(error))
            typer.echo(f"embedded PostgreSQL data: {settings.embedded_pgdata}")
        else:
            assert settings.database is not None
            target = settings.database
        bootstrapped = _run(_prepare_database(settings, target, embedded is not None))
        if embedded is not None:
            target = app_role_target(target, settings.database_app_role)
        served = Settings(**{**settings.__dict__, "database": target})
        try:
            app = create_app(served, database="lifespan")
        except ConfigError as error:
            _fail(f"configuration error: {error}", 2)
        address = f"http://{listen_host}:{listen_port}"
        if settings.graphiql:
            typer.echo(f"GraphiQL: {address}/graphql  (open it in a browser)")
        else:
            typer.echo(f"GraphQL endpoint: {address}/graphql  (GraphiQL is off)")
        typer.echo(f"Health:   {address}/healthz")
        if bootstrapped is not None:
            typer.echo("First start on this database:")
            _print_bootstrap(bootstrapped)
        typer.echo("Stop with Ctrl+C.")
        config = uvicorn.Config(
            app,
            host=listen_host,
            port=listen_port,
            log_config=None,
            access_log=False,
            lifespan="on",
            server_header=False,
        )
        jobs = _start_worker(target) if with_worker else None
        try:
            _quiet_server_class()(config).run()
        finally:
            if jobs is not None:
                _stop_worker(jobs)
    finally:
        if embedded is not None:
            embedded.stop()


def _database_url(target: DatabaseTarget) -> str:
    """``target`` as a ``postgresql://`` URL (a Unix-socket directory in ``?host=``)."""
    from urllib.parse import quote, urlencode

    credentials = quote(target.user, safe="")
    if target.password:
        credentials += ":" + quote(target.password, safe="")
    query: dict[str, str] = {}
    if target.host.startswith("/"):
        location = f":{target.port}"
        query["host"] = target.host
    else:
        location = f"{target.host}:{target.port}"
    if target.ssl is not None:
        query["sslmode"] = target.ssl
    url = f"postgresql://{credentials}@{location}/{quote(target.database, safe='')}"
    return url + (f"?{urlencode(query)}" if query else "")


def _start_worker(target: DatabaseTarget) -> Any:
    """``cdlm worker`` for ``cdlm serve --with-worker``: a child process on the served database
    (``DATABASE_URL`` in its environment only), leaving the audit sequencer to the server."""
    import os
    import subprocess

    env = {**os.environ, "DATABASE_URL": _database_url(target)}
    command = [sys.executable, "-m", "cdlm", "worker", "--skip", "audit_sequencer"]
    return subprocess.Popen(command, env=env)  # noqa: S603 (this interpreter, fixed arguments)


def _stop_worker(process: Any, seconds: float = 30.0) -> None:
    """Stop the child worker as SIGTERM does (runs in progress are cancelled and resume next
    time); killed if it has not stopped after ``seconds``."""
    import signal
    import subprocess

    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@cli.command()
def worker(
    job: Annotated[
        list[str] | None,
        typer.Option("--job", help="Run only this job (repeat for several; default: all)."),
    ] = None,
    skip: Annotated[
        list[str] | None, typer.Option("--skip", help="Leave this job out (repeatable).")
    ] = None,
    interval: Annotated[
        float, typer.Option(min=0.1, help="Seconds between audit sequencer rounds.")
    ] = 1.0,
    hourly: Annotated[
        bool,
        typer.Option(
            "--hourly/--no-hourly", help="Also run `dsr tick` and `retention sweep` every hour."
        ),
    ] = True,
    daily: Annotated[
        bool,
        typer.Option(
            "--daily/--no-daily",
            help="Also run `match run` and `analytics refresh` every day (with their extras).",
        ),
    ] = True,
) -> None:
    """Run the scheduled jobs on their schedules until stopped (Ctrl+C or SIGTERM): chain
    pending read audit records about every second, the request tick and retention sweep every
    hour, the match run and analytics refresh every day (see README, Jobs). Each run holds its
    job's lock: several workers, Lambda schedules and the CLI at once never run one job
    twice. A worker that loses its database retries with backoff until it is back."""
    import signal

    from cdlm.core.logs import configure_logging
    from cdlm.jobs.worker import available, describe, run_worker, select, with_interval

    settings = _settings()
    configure_logging(settings.log_level)
    left_out = list(skip or [])
    left_out += [] if hourly else ["request_tick", "retention_sweep"]
    left_out += [] if daily else ["match_run", "analytics_refresh"]
    try:
        chosen = select(job or [], left_out)
    except KeyError as unknown:
        from cdlm.jobs.registry import JOBS

        _fail(f"no job {unknown}; the jobs are: {', '.join(JOBS)}", 2)
    chosen, missing = available(with_interval(chosen, "audit_sequencer", interval))
    _check_job_settings(settings, [j.name for j in chosen])

    async def work(target: DatabaseTarget) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        typer.echo(f"worker: {describe(chosen) or 'no jobs to run'}.")
        for left in missing:
            extras = " and ".join(left.missing_extras())
            typer.echo(f"worker: {left.title}: the {extras} extra is not installed; skipped.")
        typer.echo("Stop with Ctrl+C.")
        await run_worker(stop, chosen, settings, target)

    _on_database(settings, work)
    typer.echo("worker stopped")


def _check_job_settings(settings: Settings, jobs: list[str]) -> None:
    """Stop with one line when a setting the chosen jobs need is missing or malformed (the
    master key, the archive), before any of them runs."""
    from cdlm.retention.archive import archive_store_from
    from cdlm.vault.keys import provider_from_settings

    try:
        if {"request_tick", "retention_sweep", "match_run"} & set(jobs):
            provider_from_settings(settings)
        if "retention_sweep" in jobs:
            archive_store_from(settings)
    except ConfigError as error:
        _fail(f"configuration error: {error}", 2)


def _run_job(
    settings: Settings,
    name: str,
    *,
    budget_seconds: float | None = None,
    options: dict[str, Any] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Any:
    """Run the job ``name`` once under its lock (as ``cdlm worker`` and Lambda do); returns its
    result. Another run holding the lock, or the job refusing (``RUN_IN_PROGRESS``): one line,
    exit 1."""
    return _on_database(
        settings,
        lambda target: _job_once(
            settings,
            name,
            target,
            budget_seconds=budget_seconds,
            options=options,
            progress=progress,
        ),
    )


async def _job_once(
    settings: Settings,
    name: str,
    target: DatabaseTarget,
    *,
    budget_seconds: float | None = None,
    options: dict[str, Any] | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> Any:
    """:func:`_run_job` on a database the ORM is initialized on (``target``)."""
    from cdlm.jobs.registry import JOBS, JobContext
    from cdlm.jobs.runner import run_once

    job = JOBS[name]
    context = JobContext(settings, budget_seconds, options or {}, progress)
    try:
        outcome = await run_once(job, context, target, connect_timeout=settings.db_connect_timeout)
    except Conflict as error:
        _fail(error.message)
    if outcome.skipped:
        _fail(outcome.message())
    return outcome.result


@cli.command()
def migrate() -> None:
    """Apply pending database migrations as the tables' owner (CDLM_DATABASE_OWNER_URL, else
    DATABASE_URL, or the embedded database), granting the app role its privileges."""
    from cdlm.db.embedded import EmbeddedPostgres
    from cdlm.db.lifecycle import apply_migrations, ensure_database

    settings = _settings()
    embedded = (
        EmbeddedPostgres(settings.embedded_pgdata) if settings.uses_embedded_database else None
    )

    async def run(target: DatabaseTarget) -> list[str]:
        if embedded is not None:
            await ensure_database(target, settings.db_connect_timeout)
        return await apply_migrations(
            target, settings.db_connect_timeout, app_role=settings.database_app_role
        )

    try:
        target = embedded.start() if embedded is not None else settings.database_owner
        if target is None:
            typer.echo("migrate: no CDLM_DATABASE_OWNER_URL; migrating as DATABASE_URL's role")
            target = settings.database
        assert target is not None
        applied = _run(run(target))
    except DatabaseUnavailable as error:
        _fail(str(error))
    finally:
        if embedded is not None:
            embedded.stop()
    for name in applied:
        typer.echo(f"applied migration {name}")
    typer.echo(f"database {target.safe_description} is up to date ({len(applied)} applied now)")


def _on_database(settings: Settings, work: Callable[[DatabaseTarget], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` against the migrated database (starting the embedded one when needed)."""
    from cdlm.db.embedded import EmbeddedPostgres
    from cdlm.db.lifecycle import (
        app_role_target,
        close_orm,
        ensure_database,
        init_orm,
        migration_status,
    )

    embedded = (
        EmbeddedPostgres(settings.embedded_pgdata) if settings.uses_embedded_database else None
    )

    async def run(target: DatabaseTarget) -> T:
        if embedded is not None:
            await ensure_database(target, settings.db_connect_timeout)
        if (await migration_status(target)).pending:
            raise DatabaseUnavailable("the database is not migrated; run `cdlm migrate` first")
        if embedded is not None:  # the work runs as the app role, as the API does
            target = app_role_target(target, settings.database_app_role)
        context = await init_orm(target, settings)
        try:
            return await work(target)
        finally:
            await close_orm(context)

    try:
        target = embedded.start() if embedded is not None else settings.database
        assert target is not None
        return _run(run(target))
    finally:
        if embedded is not None:
            embedded.stop()


@cli.command("verify")
def verify_command(
    full: Annotated[
        bool,
        typer.Option("--full", help="Re-hash from the first entry, checking every checkpoint."),
    ] = False,
    checkpoint: Annotated[
        bool,
        typer.Option("--checkpoint", help="Then write checkpoints of the intact ledgers' heads."),
    ] = False,
) -> None:
    """Verify the audit trail and the consent ledger from their newest checkpoints (or --full
    from their first entries): one line per ledger; exit code 1 when one is broken, 3 when a
    checkpoint run holds the lock."""
    from cdlm.jobs.ledger_checkpoint import run
    from cdlm.ledgers.verify import describe

    settings = _settings()

    async def work(_: DatabaseTarget) -> list[Any] | None:
        return await run(settings, full=full, write=checkpoint)

    try:
        reports = _on_database(settings, work)
    except OSError as error:  # the checkpoint store
        _fail(f"checkpoint store: {error}")
    if reports is None:
        _fail("a ledger checkpoint run is in progress; try again", 3)
    for report in reports:
        typer.echo(describe(report))
    if not all(report.ok for report in reports):
        raise typer.Exit(1)


@cli.command("bootstrap")
def bootstrap_command(
    email: Annotated[str, typer.Option(help="Email of the first admin.")],
    name: Annotated[str, typer.Option(help="Display name of the first admin.")] = "Admin",
) -> None:
    """Create the first admin and an admin API key, and print them once."""
    from cdlm.auth.service import bootstrap
    from cdlm.auth.settings import auth_settings

    settings = _settings()

    async def work(_: DatabaseTarget) -> Bootstrap:
        return await bootstrap(email, name, auth_settings(settings))

    try:
        result = _on_database(settings, work)
    except (Conflict, ValidationFailed) as error:
        _fail(error.message)
    _print_bootstrap(result)


dsr_cli = typer.Typer(help="Data subject requests.", no_args_is_help=True)
cli.add_typer(dsr_cli, name="dsr")


@dsr_cli.command("tick")
def dsr_tick() -> None:
    """Flag requests nearing or past their due date, retry notifications, and destroy the
    contact details of completed erasures (run it hourly or daily)."""
    from cdlm.core.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_level)
    _check_job_settings(settings, ["request_tick"])
    report = _run_job(settings, "request_tick")
    typer.echo(
        f"flagged {report['flagged_due_soon']} due soon and {report['flagged_overdue']} "
        f"overdue; {report['open_overdue']} open requests are overdue; notifications: "
        f"{report['notifications_sent']} sent, {report['notifications_failed']} failed; "
        f"{report['requester_details_destroyed']} erased requesters' details destroyed; "
        f"{report['segment_exports_destroyed']} segment export files no link can fetch "
        "destroyed"
    )


@cli.command("enrich")
def enrich_command(
    all_customers: Annotated[
        bool, typer.Option("--all", help="Derive every live customer's attributes again.")
    ] = False,
) -> None:
    """Derive the analysis attributes (country, age band, phone and email kinds...) of every
    customer again with the enrichers CDLM_ENRICHERS enables: after enabling, disabling or
    upgrading one. Profiles are opened in memory only."""
    from cdlm.core import clock
    from cdlm.core.logs import configure_logging
    from cdlm.customers.attributes import DerivationReport, derive_all
    from cdlm.vault.keys import provider_from_settings
    from cdlm.vault.service import Vault

    if not all_customers:
        _fail("say which customers: --all")
    settings = _settings()
    configure_logging(settings.log_level)
    try:
        vault = Vault(provider_from_settings(settings))
    except ConfigError as error:
        _fail(f"configuration error: {error}", 2)

    async def work(_: DatabaseTarget) -> DerivationReport:
        return await derive_all(vault, clock.now())

    report = _on_database(settings, work)
    enabled = ", ".join(sorted(report.enabled)) or "none"
    typer.echo(f"derived the attributes of {report.customers} customers (enrichers: {enabled})")


retention_cli = typer.Typer(help="Retention of customer data.", no_args_is_help=True)
cli.add_typer(retention_cli, name="retention")


@retention_cli.command("sweep")
def retention_sweep(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would be disposed of; change nothing.")
    ] = False,
    max_seconds: Annotated[
        float | None, typer.Option(help="Stop after this long; the next run resumes.")
    ] = None,
) -> None:
    """Dispose of data past its retention period as the policies declare (legal holds keep
    what they hold); prints the evidence per policy."""
    from cdlm.core.logs import configure_logging
    from cdlm.retention.sweep import Report, preview

    settings = _settings()
    configure_logging(settings.log_level)
    _check_job_settings(settings, ["retention_sweep"])

    async def forecast(_: DatabaseTarget) -> Report:
        return await preview()

    report: Report = (
        _on_database(settings, forecast)
        if dry_run
        else _run_job(settings, "retention_sweep", budget_seconds=max_seconds)
    )
    verb = "would dispose of" if report.dry_run else "disposed of"
    for outcome in report.outcomes:
        typer.echo(
            f"{outcome.category}: {verb} {outcome.disposed} ({outcome.action.value}, older than "
            f"{outcome.cutoff:%Y-%m-%d}), {outcome.skipped_held} kept by legal holds"
            + (
                f", {len(outcome.archive_objects)} archive objects"
                if outcome.archive_objects
                else ""
            )
        )
    if not report.outcomes:
        typer.echo("no active retention policy")
    if not report.dry_run:
        state = "finished" if report.finished else "stopped; run it again to resume"
        typer.echo(f"sweep {report.run_id} as of {report.as_of:%Y-%m-%d %H:%M} {state}")


@cli.command("event-partitions")
def event_partitions_command(
    months_ahead: Annotated[
        int, typer.Option(min=0, max=120, help="Months to make after the current one.")
    ] = 3,
) -> None:
    """Make this month of events and the next ones, and a month for events waiting in the
    default partition (idempotent; the worker and a Lambda schedule run it daily)."""
    settings = _settings()
    result = _run_job(settings, "event_partitions", options={"months_ahead": months_ahead})
    typer.echo(f"made {', '.join(result.made) or 'none'}; {len(result.existing)} already there")


match_cli = typer.Typer(help="Probabilistic matching of profiles.", no_args_is_help=True)
cli.add_typer(match_cli, name="match")


@match_cli.command("run")
def match_run(
    full: Annotated[bool, typer.Option("--full", help="Compare every profile.")] = False,
    train: Annotated[bool, typer.Option("--train", help="Train the model again first.")] = False,
    max_seconds: Annotated[
        float | None, typer.Option(help="Stop after this long; the next run resumes.")
    ] = None,
) -> None:
    """Score profiles changed since the last run (or all) against their blocks: queue
    candidates for review and merge the sure ones; prints the run's evidence."""
    from cdlm.core.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_level)
    _check_job_settings(settings, ["match_run"])
    evidence = _on_database(
        settings,
        lambda target: _match(settings, target, full=full, train=train, max_seconds=max_seconds),
    )
    _print_match_run(evidence)


async def _match(
    settings: Settings,
    target: DatabaseTarget,
    *,
    full: bool = False,
    train: bool = False,
    max_seconds: float | None,
) -> Any:
    """The ``match_run`` job under its lock, with a progress bar (refusal: one line, exit 1)."""
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        tasks: dict[str, Any] = {}

        def show(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        return await _job_once(
            settings,
            "match_run",
            target,
            budget_seconds=max_seconds,
            options={"full": full, "train": train},
            progress=show,
        )


def _print_match_run(evidence: Any) -> None:
    from cdlm.matching.runs import evidence_json

    shown = evidence_json(evidence)
    typer.echo(
        f"match run {shown['run_id']} {shown['status']}: {shown['profiles']} profiles, "
        f"{shown['focus']} compared against their blocks, {shown['compared_pairs']} pairs "
        f"compared, {shown['candidates']} candidates ({shown['queued']} queued for review, "
        f"{shown['auto_merged']} merged automatically) in {shown['duration_seconds']:.1f} s"
        + (f" with model v{shown['model_version']}" if shown["model_version"] else "")
    )
    if shown["status"] == "interrupted":
        typer.echo("the time budget ran out; run it again to resume")


analytics_cli = typer.Typer(
    help="Customer analytics: RFM, lifetime value and churn risk.", no_args_is_help=True
)
cli.add_typer(analytics_cli, name="analytics")


def _as_of(raw: str | None) -> datetime | None:
    """``--as-of``: a date (its midnight, UTC) or an ISO 8601 time (UTC when no offset)."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        _fail(f"--as-of: {raw!r} is not a date (YYYY-MM-DD) or an ISO 8601 time", 2)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@analytics_cli.command("refresh")
def analytics_refresh(
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="End of the observation window: only purchases before it count, ages and "
            "recency are measured from it. A date (midnight UTC) or ISO time; default: now.",
        ),
    ] = None,
) -> None:
    """Score every customer's purchasing: RFM quintiles, expected purchases, P(alive), expected
    value and churn risk (BG/NBD and Gamma-Gamma fitted on everyone); prints the evidence."""
    from cdlm.core.logs import configure_logging

    settings = _settings()
    configure_logging(settings.log_level)
    moment = _as_of(as_of)
    if not _analytics_installed():
        _fail("the analytics extra is not installed: pip install 'cdlm[analytics]'", 2)
    _print_analytics_run(_run_job(settings, "analytics_refresh", options={"as_of": moment}))


def _print_analytics_run(run: Any) -> None:
    from cdlm.analytics.runs import evidence_json

    shown = evidence_json(run)
    typer.echo(
        f"analytics run {shown['run_id']} {shown['status']} as of {shown['as_of']}: "
        f"{shown['customers_scored']} customers scored, {shown['customers_cleared']} cleared; "
        f"{shown['purchases']} purchases by {shown['buyers']} buyers "
        f"({shown['repeat_buyers']} repeat) in {shown['duration_seconds']:.1f} s"
    )
    if shown["skipped_amounts"]:
        skipped = ", ".join(f"{c} {n}" for c, n in sorted(shown["skipped_amounts"].items()))
        typer.echo(f"amounts without an exchange rate (left out): {skipped}")
    if shown["bgnbd"]:
        fit = shown["bgnbd"]
        typer.echo(
            f"BG/NBD: r={fit['r']:.4g} alpha={fit['alpha']:.4g} days a={fit['a']:.4g} "
            f"b={fit['b']:.4g} log-likelihood={fit['log_likelihood']:.1f}"
            + ("" if fit["converged"] else " (did not converge)")
        )
    if shown["gamma_gamma"]:
        fit = shown["gamma_gamma"]
        typer.echo(
            f"Gamma-Gamma: p={fit['p']:.4g} q={fit['q']:.4g} v={fit['v']:.4g} "
            f"log-likelihood={fit['log_likelihood']:.1f}"
        )
    if shown["note"]:
        typer.echo(f"note: {shown['note']}")


@cli.command("seed-demo")
def seed_demo_command(
    customers: Annotated[int, typer.Option(min=3, max=5000, help="How many people.")] = 200,
) -> None:
    """Fill an empty, non-production installation with fictional demo data to explore."""
    from cdlm.auth.settings import auth_settings
    from cdlm.config import Environment
    from cdlm.dsr.notifier import LogNotifier
    from cdlm.system.demo import AlreadySeeded, Seeded, seed_demo
    from cdlm.vault.keys import provider_from_settings
    from cdlm.vault.service import Vault

    settings = _settings()
    if settings.environment is Environment.PRODUCTION:
        _fail("seed-demo writes fictional people: not in production", 2)
    try:
        vault = Vault(provider_from_settings(settings))
    except ConfigError as error:
        _fail(f"configuration error: {error}", 2)

    async def work(_: DatabaseTarget) -> Seeded:
        return await seed_demo(
            vault, auth_settings(settings), settings, LogNotifier(), count=customers
        )

    try:
        seeded = _on_database(settings, work)
    except (AlreadySeeded, Conflict, ValidationFailed) as error:
        _fail(error.message)
    typer.echo(
        f"demo data: {seeded.customers} customers, {seeded.events} events, "
        f"{seeded.consent_decisions} consent decisions, {seeded.requests} data subject requests, "
        "4 purposes, 10 retention policies, 1 legal hold"
    )


@cli.command("report")
def report_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")],
    start: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Start of the period: a date (midnight UTC) or ISO time; "
            "default: 90 days before --to.",
        ),
    ] = None,
    end: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="End of the period, excluded: a date (midnight UTC) or ISO "
            "time; default: tomorrow's midnight UTC (today included).",
        ),
    ] = None,
    interval: Annotated[
        str, typer.Option(help="Bucket width: day, week (from Monday) or month (UTC).")
    ] = "day",
    funnel: Annotated[
        str | None,
        typer.Option(help="Event types of a funnel, in order: view,cart,checkout,purchase."),
    ] = None,
    funnel_within: Annotated[
        int,
        typer.Option(
            min=1, help="Days from a customer's first step within which the others count."
        ),
    ] = 30,
) -> None:
    """Write the dashboard of a period as ONE self-contained HTML file (charts, quality and
    privacy figures, a funnel): it opens with no network. Needs the reports extra (plotly)."""
    import importlib.util

    if importlib.util.find_spec("plotly") is None:
        _fail("the reports extra is not installed: pip install 'cdlm[reports]'", 2)
    from cdlm.core import clock
    from cdlm.core.periods import Interval
    from cdlm.core.principal import SYSTEM
    from cdlm.insight import report, service
    from cdlm.insight.api import revenue_rules

    try:
        width = Interval(interval.strip().lower())
    except ValueError:
        _fail("--interval is day, week or month", 2)
    settings = _settings()
    until = _moment_option("--to", end) or (
        clock.now().replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    )
    since = _moment_option("--from", start) or until - timedelta(days=90)
    steps = [s.strip() for s in funnel.split(",") if s.strip()] if funnel else []
    purchases, rates = revenue_rules(settings.analytics)

    async def work(_: DatabaseTarget) -> str:
        query = service.DashboardQuery(since, until, width, purchases, rates)
        board = await service.dashboard(SYSTEM, query)
        section = await _funnel(steps, timedelta(days=funnel_within), board.start, board.end)
        return report.render(board, section, clock.now())

    try:
        page = _on_database(settings, work)
    except ValidationFailed as error:
        option = {"input.from": "--from", "input.to": "--to", "input.interval": "--interval",
                  "input.within": "--funnel-within"}  # fmt: skip
        issues = error.issues or [FieldIssue(error.field or "", error.code, error.message)]

        def named(field: str) -> str:
            if field.startswith("input.steps."):
                return f"--funnel step {int(field.rsplit('.', 1)[1]) + 1}"
            return "--funnel" if field == "input.steps" else option.get(field, "report")

        _fail("; ".join(f"{named(i.field)}: {i.message}" for i in issues), 2)
    output.write_text(page, encoding="utf-8")
    typer.echo(f"wrote {output} ({len(page.encode()) // 1024} KiB)")


async def _funnel(
    steps: list[str], within: timedelta, start: datetime, end: datetime
) -> FunnelSection:
    """The report's funnel of ``steps`` entered in the period (each later step counted within
    ``within`` of the first); none when no steps are given."""
    from cdlm.analytics.journeys import service as journeys
    from cdlm.core.principal import SYSTEM
    from cdlm.insight.report import FunnelSection

    if not steps:
        return FunnelSection()
    found = await journeys.funnel(SYSTEM, journeys.FunnelQuery(tuple(steps), within, start, end))
    return FunnelSection(steps=tuple(found.steps))


def _moment_option(name: str, raw: str | None) -> datetime | None:
    """A date (its midnight, UTC) or an ISO 8601 time (UTC when no offset)."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw.strip())
    except ValueError:
        _fail(f"{name}: {raw!r} is not a date (YYYY-MM-DD) or an ISO 8601 time", 2)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@cli.command("ropa")
def ropa_command(
    format: Annotated[str, typer.Option(help="json or markdown.")] = "markdown",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Print the records of processing activities (GDPR Art. 30) of this installation."""
    import json

    from cdlm.governance.ropa import records_of_processing, to_markdown

    if format not in ("json", "markdown"):
        _fail("--format is json or markdown", 2)
    settings = _settings()

    async def work(_: DatabaseTarget) -> dict[str, Any]:
        return await records_of_processing(settings)

    records = _on_database(settings, work)
    text = json.dumps(records, indent=2) + "\n" if format == "json" else to_markdown(records)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        typer.echo(f"wrote {output}")


def _vault(settings: Settings) -> Any:
    from cdlm.vault.keys import provider_from_settings
    from cdlm.vault.service import Vault

    try:
        return Vault(provider_from_settings(settings))
    except ConfigError as error:
        _fail(f"configuration error: {error}", 2)


async def _reapply(settings: Settings, vault: Any, since: datetime | None) -> None:
    from cdlm.erasures.register import register_from
    from cdlm.retention.reapply import reapply_erasures

    done = await reapply_erasures(vault, register_from(settings), since)
    typer.echo(
        f"erasure records read: {done.records}; customers erased again: {done.re_erased}; "
        f"already erased: {done.already_erased}; identifiers suppressed again: "
        f"{done.identifiers_suppressed}"
    )


@cli.command("reapply-erasures")
def reapply_erasures_command(
    since: Annotated[
        str | None,
        typer.Option(help="Only erasures at or after this date or ISO 8601 time (UTC if bare)."),
    ] = None,
) -> None:
    """Carry out again every erasure in the erasure register (run after restoring a backup,
    an RDS snapshot or a point-in-time restore). Idempotent."""
    settings = _settings()
    moment = _moment_option("--since", since)
    vault = _vault(settings)

    async def work(_: DatabaseTarget) -> None:
        await _reapply(settings, vault, moment)

    _on_database(settings, work)


@cli.command("backup")
def backup_command(
    output: Annotated[Path, typer.Option("--output", "-o", help="The backup file to write.")],
) -> None:
    """Back up the embedded database (pg_dump, custom format). With DATABASE_URL, use the
    database service's snapshots, then `cdlm reapply-erasures` after restoring one."""
    from cdlm.db.backup import dump

    settings = _settings()
    if not settings.uses_embedded_database:
        _fail("backup is for the embedded database; with DATABASE_URL use its snapshots", 2)

    async def work(target: DatabaseTarget) -> None:
        await dump(target, output)  # as the owner: every table, grants included

    _as_owner(settings, work)
    typer.echo(f"wrote {output}")


@cli.command("restore")
def restore_command(
    file: Annotated[Path, typer.Argument(help="A file written by `cdlm backup`.")],
) -> None:
    """Replace the embedded database with a backup, then carry out again every erasure in the
    erasure register, so no one erased since the backup comes back."""
    from cdlm.db.backup import load

    settings = _settings()
    if not settings.uses_embedded_database:
        _fail("restore is for the embedded database; with DATABASE_URL use its snapshots", 2)
    if not file.is_file():
        _fail(f"{file}: no such file", 2)
    vault = _vault(settings)

    async def work(target: DatabaseTarget) -> None:
        from cdlm.db.lifecycle import apply_migrations, close_orm, init_orm

        await load(target, file, settings.database_app_role)
        migrated = await apply_migrations(
            target, settings.db_connect_timeout, app_role=settings.database_app_role
        )
        for name in migrated:
            typer.echo(f"applied migration {name}")  # the backup came from an older release
        context = await init_orm(target, settings)
        try:
            await _reapply(settings, vault, None)
        finally:
            await close_orm(context)

    _as_owner(settings, work)
    typer.echo(f"restored {file}")


def _as_owner(settings: Settings, work: Callable[[DatabaseTarget], Coroutine[Any, Any, T]]) -> T:
    """Run ``work`` on the embedded server as the owner (its database created, not necessarily
    migrated)."""
    from cdlm.db.embedded import EmbeddedPostgres
    from cdlm.db.lifecycle import ensure_database

    embedded = EmbeddedPostgres(settings.embedded_pgdata)

    async def run(target: DatabaseTarget) -> T:
        await ensure_database(target, settings.db_connect_timeout)
        return await work(target)

    try:
        return _run(run(embedded.start()))
    finally:
        embedded.stop()


@cli.command("import")
def import_command(
    file: Annotated[Path, typer.Argument(help="A .csv (with a header row) or .jsonl file.")],
    source_system: Annotated[str, typer.Option(help="Code of the source, e.g. crm.")],
    source_kind: Annotated[str, typer.Option(help="crm, web_form, support, ...")] = "import",
    lawful_basis: Annotated[str, typer.Option(help="consent, contract, ...")] = "contract",
    purpose: Annotated[str, typer.Option(help="Purpose code.")] = "essential.service",
    batch_size: Annotated[int, typer.Option(min=1, max=5000)] = 250,
    rejects: Annotated[
        Path | None, typer.Option(help="Where refused lines go (default FILE.rejects.jsonl).")
    ] = None,
    restart: Annotated[bool, typer.Option(help="Import a finished file again.")] = False,
) -> None:
    """Import customers from a file, with a progress bar; an interrupted run resumes."""
    from dataclasses import replace

    from rich.progress import Progress

    from cdlm.core.principal import SYSTEM
    from cdlm.core.vocabulary import LawfulBasis, SourceKind
    from cdlm.customers.importer import (
        FileImport,
        ImportOptions,
        ImportRefused,
        count_rows,
        run_import,
    )
    from cdlm.customers.survivorship import trust_table
    from cdlm.vault.keys import provider_from_settings
    from cdlm.vault.service import Vault

    # One connection holds the file's lock for the whole run, another commits the batches.
    settings = _settings()
    settings = replace(settings, db_pool_max=max(settings.db_pool_max, 2))
    if not file.is_file():
        _fail(f"no such file: {file}")
    try:
        options = ImportOptions(
            source_system=source_system,
            source_kind=SourceKind(source_kind),
            lawful_basis=LawfulBasis(lawful_basis),
            purpose=purpose,
            batch_size=batch_size,
            trust=trust_table(settings.source_trust),
        )
        total = count_rows(file)
    except ConfigError as error:
        _fail(f"configuration error: {error}", 2)
    except ValueError as error:
        _fail(f"bad option: {error}", 2)
    except ImportRefused as error:
        _fail(str(error))
    vault = Vault(provider_from_settings(settings))

    async def work(target: DatabaseTarget) -> Any:
        with Progress(transient=False) as bar:
            task = bar.add_task(f"importing {file.name}", total=total)
            summary = await run_import(
                SYSTEM,
                vault,
                FileImport(file, options, rejects_path=rejects, restart=restart),
                progress=lambda n: bar.advance(task, n),
            )
        threshold = settings.matching.after_import
        touched = summary.created + summary.matched
        if threshold and touched >= threshold and _matching_installed():
            typer.echo(f"{touched} profiles touched: matching them")
            _print_match_run(await _match(settings, target, max_seconds=None))
        return summary

    try:
        summary = _on_database(settings, work)
    except ImportRefused as error:
        _fail(str(error))
    except ValidationFailed as error:
        _fail(error.message)
    resumed = f", resumed after line {summary.resumed_from}" if summary.resumed_from else ""
    typer.echo(
        f"{summary.total_lines} records: {summary.created} created, {summary.matched} matched, "
        f"{summary.rejected} rejected{resumed}"
    )
    if summary.rejected:
        typer.echo(f"rejected lines and reasons: {summary.rejects_path}")


@cli.command()
def makemigrations(
    name: Annotated[str | None, typer.Option(help="Suffix of the new migration's name.")] = None,
) -> None:
    """Write a migration for model changes not yet covered (for developers)."""
    from cdlm.db.schema_changes import write_migrations

    written = asyncio.run(write_migrations(name))
    if not written:
        typer.echo("no model changes")
    for path in written:
        typer.echo(f"wrote {path}")


@cli.command("export-schema")
def export_schema(
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")
    ] = None,
) -> None:
    """Print the GraphQL schema (SDL) generated from the code."""
    from cdlm.api.schema import schema_sdl

    sdl = schema_sdl()
    if output is None:
        sys.stdout.write(sdl)
    else:
        output.write_text(sdl, encoding="utf-8")
        typer.echo(f"wrote {output}")


def main() -> None:
    """Console-script entry point."""
    cli()
