"""``cdlm import FILE``: customers from CSV or JSON Lines, in batches, resumable.

The same run works on any source of rows identified by its content (:func:`import_rows`): a
local file (:func:`run_import`) or an object streamed from S3 (:mod:`cdlm.jobs.bulk_import`),
with its refused lines written wherever the source wants them (:class:`RejectsSink`) and a stop
between batches when the caller's time is up (an unfinished run is resumed by the next one).

Each batch is one transaction: its records (resolved together with a fixed number of
statements; a refused record does not stop the others), one audit entry, and the run's
checkpoint. A rerun of the same file resumes
after the last committed line. Refused records go to a rejects file with their line number and
reasons (never their values: those are in the source file already). A run holds a lock on its
file (by content) from start to end, so a second run of the same file at the same time is
refused at once instead of importing every record twice.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Protocol

from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.core import clock
from cdlm.core.errors import ErrorCode, FieldIssue, ValidationFailed
from cdlm.core.locks import lock_key
from cdlm.core.principal import Principal
from cdlm.core.text import text_problem
from cdlm.core.vocabulary import LawfulBasis, LifecycleStage, SourceKind
from cdlm.customers.ingest import CustomerIngest, IngestResult, Outcome, Source, ingest_batch
from cdlm.customers.models import ImportRun
from cdlm.db.connection import try_session_lock
from cdlm.quality.fields import PROFILE_FIELDS
from cdlm.vault.service import Vault

EXTERNAL_ID_COLUMN = "external_ids"
STAGE_COLUMN = "lifecycle_stage"
COLLECTED_COLUMN = "collected_at"
KNOWN_COLUMNS = set(PROFILE_FIELDS) | {EXTERNAL_ID_COLUMN, STAGE_COLUMN, COLLECTED_COLUMN}


class ImportRefused(Exception):
    """The file cannot be imported at all (format, header, already imported, being imported)."""


class UnknownColumns(ImportRefused):
    """The CSV header names columns the importer does not know. The message names them (for
    the operator at the terminal); ``count`` says how many without naming them (a file whose
    first line is a record has personal data for a header)."""

    def __init__(self, unknown: set[str]) -> None:
        super().__init__(f"unknown columns: {', '.join(sorted(unknown))}")
        self.count = len(unknown)


@dataclass(frozen=True)
class ImportOptions:
    """Provenance shared by every record of the file."""

    source_system: str
    source_kind: SourceKind
    lawful_basis: LawfulBasis
    purpose: str
    batch_size: int = 250
    trust: dict[SourceKind, int] | None = None


@dataclass
class ImportSummary:
    """Counts of a run (all lines, including those committed by earlier attempts); an
    unfinished run stopped after ``last_line`` because its time was up."""

    total_lines: int
    resumed_from: int
    created: int
    matched: int
    rejected: int
    rejects_path: Path | None
    finished: bool = True
    last_line: int = 0


def file_digest(path: Path) -> str:
    """SHA-256 of the file: a run is identified by content, not by name."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


@asynccontextmanager
async def file_lock(digest: str) -> AsyncIterator[None]:
    """Hold the import lock of the file ``digest`` for the ``with`` block, or refuse at once.

    A session-level advisory lock on a pool connection kept for the block (so the batches'
    transactions need a second one): it is released at the end, on failure, and by the server
    when the process dies and its connection with it.
    """
    key = lock_key(f"customers.import:{digest}")
    async with get_connection("default").acquire_connection() as connection:
        if not await try_session_lock(connection, key):
            raise ImportRefused("this file is being imported by another run; wait for it to finish")
        try:
            yield
        finally:
            if not connection.is_closed():
                await connection.execute("SELECT pg_advisory_unlock($1)", key)


#: File name endings the importer reads.
SUFFIXES = (".csv", ".jsonl", ".ndjson")


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` from a ``.csv`` (header row) or ``.jsonl`` file."""
    if path.suffix.lower() not in SUFFIXES:
        raise ImportRefused("files must end in .csv or .jsonl")
    with path.open("rb") as stream:
        yield from read_stream(stream, path.suffix)


def read_stream(stream: IO[bytes], suffix: str) -> Iterator[tuple[int, dict[str, Any]]]:
    """:func:`read_rows` from a byte stream read once, front to back (a file, an S3 body):
    ``suffix`` says its format."""
    if suffix.lower() == ".csv":
        with io.TextIOWrapper(stream, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            try:
                header = reader.fieldnames or []
            except UnicodeDecodeError:
                raise ImportRefused("the file is not UTF-8 text") from None
            unknown = set(header) - KNOWN_COLUMNS
            if unknown:
                raise UnknownColumns(unknown)
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except (UnicodeDecodeError, csv.Error):
                    raise ImportRefused(
                        f"line {reader.line_num + 1} cannot be read (not UTF-8 CSV)"
                    ) from None
                if None in row:
                    yield reader.line_num, {"__error__": "More cells than the header has."}
                    continue
                yield reader.line_num, {k: v for k, v in row.items() if v not in (None, "")}
    elif suffix.lower() in (".jsonl", ".ndjson"):
        with io.TextIOWrapper(stream, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    yield number, {"__error__": "This line is not valid JSON."}
                    continue
                if not isinstance(row, dict):
                    yield number, {"__error__": "Not an object."}
                elif text_problem(row) is not None:
                    yield number, {"__error__": str(text_problem(row))}
                else:
                    yield number, {k: v for k, v in row.items() if v is not None}
    else:
        raise ImportRefused("files must end in .csv or .jsonl")


def count_rows(path: Path) -> int:
    """How many records the file holds (for the progress bar)."""
    return sum(1 for _ in read_rows(path))


def to_ingest(row: dict[str, Any], options: ImportOptions) -> CustomerIngest:
    """One record; any malformed row raises :class:`ValidationFailed` (never crashes a batch)."""
    try:
        return _to_ingest(row, options)
    except ValidationFailed:
        raise
    except (TypeError, ValueError, AttributeError):
        raise ValidationFailed(
            "A field has the wrong type.", field="line", code=ErrorCode.INVALID_FORMAT
        ) from None


def _to_ingest(row: dict[str, Any], options: ImportOptions) -> CustomerIngest:
    if "__error__" in row:
        raise ValidationFailed(str(row["__error__"]), field="line", code=ErrorCode.INVALID_FORMAT)
    unknown = set(row) - KNOWN_COLUMNS
    if unknown:
        # Only the count: unknown keys of a JSON line may themselves be personal data.
        raise ValidationFailed(
            f"{len(unknown)} unknown field(s).", field="line", code=ErrorCode.INVALID_FORMAT
        )
    for name, value in row.items():
        if name != EXTERNAL_ID_COLUMN and not isinstance(value, str | int | float):
            raise ValidationFailed(
                "Values are text or numbers.", field=name, code=ErrorCode.INVALID_FORMAT
            )
    collected_at = clock.now()
    if COLLECTED_COLUMN in row:
        try:
            collected_at = datetime.fromisoformat(str(row[COLLECTED_COLUMN]))
        except ValueError:
            raise ValidationFailed(
                "collected_at is not an ISO date-time.",
                field=COLLECTED_COLUMN,
                code=ErrorCode.INVALID_FORMAT,
            ) from None
    stage = None
    if STAGE_COLUMN in row:
        try:
            stage = LifecycleStage(str(row[STAGE_COLUMN]).strip().lower())
        except ValueError:
            raise ValidationFailed(
                "Unknown lifecycle stage.", field=STAGE_COLUMN, code=ErrorCode.UNKNOWN_CODE
            ) from None
    raw_ids = row.get(EXTERNAL_ID_COLUMN) or []
    if isinstance(raw_ids, str):
        external_ids = [part.strip() for part in raw_ids.split(";") if part.strip()]
    elif isinstance(raw_ids, list) and all(isinstance(p, str | int) for p in raw_ids):
        external_ids = [str(part) for part in raw_ids]
    else:
        raise ValidationFailed(
            "external_ids is text (a;b) or a list.",
            field=EXTERNAL_ID_COLUMN,
            code=ErrorCode.INVALID_FORMAT,
        )
    return CustomerIngest(
        source=Source(
            options.source_system,
            options.source_kind,
            collected_at,
            options.lawful_basis,
            options.purpose,
        ),
        profile={name: str(row[name]) for name in PROFILE_FIELDS if row.get(name) is not None},
        external_ids=external_ids,
        lifecycle_stage=stage,
    )


class RejectsSink(Protocol):
    """Where a run's refused lines go (line numbers and reasons, never values)."""

    def start(self) -> None:
        """A new run of the file: nothing refused yet."""

    def keep_up_to(self, last_line: int) -> None:
        """Forget lines after ``last_line``: their batch did not commit (a resumed run)."""

    def write(self, first_line: int, lines: list[str]) -> None:
        """The reject lines of the batch starting at ``first_line``, before it commits."""


@dataclass(frozen=True)
class FileRejects:
    """Refused lines in a local JSON Lines file."""

    path: Path

    def start(self) -> None:
        """Empty the file."""
        self.path.write_text("", encoding="utf-8")

    def keep_up_to(self, last_line: int) -> None:
        """Drop reject lines written by a batch that did not commit (resume after a crash)."""
        if not self.path.exists():
            return
        kept = [
            line
            for line in self.path.read_text(encoding="utf-8").splitlines()
            if line.strip() and json.loads(line)["line"] <= last_line
        ]
        self.path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")

    def write(self, first_line: int, lines: list[str]) -> None:
        """Append the batch's lines."""
        with self.path.open("a", encoding="utf-8") as handle:
            handle.writelines(lines)


def reject_line(number: int, failure: ValidationFailed) -> str:
    """A line of the rejects file: the line number and the reasons (never the values)."""
    issues = failure.issues or [FieldIssue(failure.field or "line", failure.code, failure.message)]
    return (
        json.dumps(
            {
                "line": number,
                "issues": [
                    {"field": i.field, "code": i.code.value, "message": i.message} for i in issues
                ],
            }
        )
        + "\n"
    )


@dataclass(frozen=True)
class FileImport:
    """A file to import with the provenance of its records; where refused records go (by
    default next to the file), and whether a file imported before is imported again."""

    path: Path
    options: ImportOptions
    rejects_path: Path | None = None
    restart: bool = False


@dataclass(frozen=True)
class RowsImport:
    """Rows to import, identified by their content's ``digest`` (a rerun resumes, a finished
    one is refused unless ``restart``); ``rows`` reads them from the start each time it is
    called; ``should_stop`` is asked after each committed batch (with the run's checkpoint)
    whether the caller's time is up."""

    digest: str
    name: str
    rows: Callable[[], Iterator[tuple[int, dict[str, Any]]]]
    options: ImportOptions
    rejects: RejectsSink
    restart: bool = False
    should_stop: Callable[[ImportRun], bool] | None = None


async def run_import(
    actor: Principal,
    vault: Vault,
    file: FileImport,
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import ``file``; resumes an interrupted run of the same file. ``progress`` is told how
    many lines each batch (or skipped line) took.

    Refused with :class:`ImportRefused` while another run of the same file is under way.
    """
    path = file.path
    rejects = file.rejects_path or path.with_name(path.name + ".rejects.jsonl")
    summary = await import_rows(
        actor,
        vault,
        RowsImport(
            digest=file_digest(path),
            name=path.name,
            rows=lambda: read_rows(path),
            options=file.options,
            rejects=FileRejects(rejects),
            restart=file.restart,
        ),
        progress=progress,
    )
    summary.rejects_path = rejects
    return summary


async def import_rows(
    actor: Principal,
    vault: Vault,
    source: RowsImport,
    *,
    progress: Callable[[int], None] | None = None,
) -> ImportSummary:
    """Import ``source`` in batches, each one transaction with its checkpoint; resumes an
    interrupted run of the same content and stops between batches when ``should_stop`` says
    so (the summary is then unfinished). Refused with :class:`ImportRefused` while another run
    of the same content is under way, or when it was imported already."""
    digest, options = source.digest, source.options
    async with file_lock(digest):
        rejects = source.rejects
        run = await ImportRun.get_or_none(file_digest=digest)
        if run is not None and run.finished_at is not None and not source.restart:
            raise ImportRefused("this file was imported already (use --restart to import it again)")
        if run is None or source.restart:
            if run is not None:
                await run.delete()
            run = await ImportRun.create(
                id=uuid.uuid4(),
                file_digest=digest,
                file_name=source.name[:255],
                source_system=options.source_system,
                started_at=clock.now(),
            )
            rejects.start()
        resumed_from = run.last_line
        rejects.keep_up_to(run.last_line)
        await vault.ready()
        total = 0
        batch: list[tuple[int, dict[str, Any]]] = []

        async def flush() -> None:
            assert run is not None
            outcomes: list[tuple[int, IngestResult | ValidationFailed]] = []
            parsed: list[tuple[int, CustomerIngest | ValidationFailed]] = []
            for number, row in batch:
                try:
                    parsed.append((number, to_ingest(row, options)))
                except ValidationFailed as refusal:
                    parsed.append((number, refusal))
            async with in_transaction():
                ingests = [item for _, item in parsed if isinstance(item, CustomerIngest)]
                done = iter(await ingest_batch(vault, ingests, options.trust))
                for number, item in parsed:
                    outcomes.append(
                        (number, item if isinstance(item, ValidationFailed) else next(done))
                    )
                created = sum(
                    1
                    for _, o in outcomes
                    if isinstance(o, IngestResult) and o.outcome is Outcome.CREATED
                )
                refused = [(n, o) for n, o in outcomes if isinstance(o, ValidationFailed)]
                if refused:
                    rejects.write(
                        batch[0][0], [reject_line(number, failure) for number, failure in refused]
                    )
                run.last_line = batch[-1][0]
                run.created += created
                run.matched += len(outcomes) - created - len(refused)
                run.rejected += len(refused)
                await run.save(update_fields=["last_line", "created", "matched", "rejected"])
                await audit.record(
                    actor,
                    "customer.import.batch",
                    target_type="import_run",
                    target_id=run.id,
                    fields=sorted({k for _, row in batch for k in row if k in PROFILE_FIELDS}),
                )
            if progress is not None:
                progress(len(batch))
            batch.clear()

        stopped = False
        for number, row in source.rows():
            total += 1
            if number <= run.last_line:
                if progress is not None:
                    progress(1)
                continue
            batch.append((number, row))
            if len(batch) >= options.batch_size:
                await flush()
                if source.should_stop is not None and source.should_stop(run):
                    stopped = True
                    break
        if batch and not stopped:
            await flush()
        if not stopped:
            run.finished_at = clock.now()
            await run.save(update_fields=["finished_at"])
        return ImportSummary(
            total,
            resumed_from,
            run.created,
            run.matched,
            run.rejected,
            None,
            finished=not stopped,
            last_line=run.last_line,
        )
