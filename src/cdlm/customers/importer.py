"""``cdlm import FILE``: customers from CSV or JSON Lines, in batches, resumable.

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
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

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
    """Counts of a run (all lines, including those committed by earlier attempts)."""

    total_lines: int
    resumed_from: int
    created: int
    matched: int
    rejected: int
    rejects_path: Path


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


def read_rows(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line number, row)`` from a ``.csv`` (header row) or ``.jsonl`` file."""
    if path.suffix.lower() == ".csv":
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            try:
                header = reader.fieldnames or []
            except UnicodeDecodeError:
                raise ImportRefused("the file is not UTF-8 text") from None
            unknown = set(header) - KNOWN_COLUMNS
            if unknown:
                raise ImportRefused(f"unknown columns: {', '.join(sorted(unknown))}")
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
    elif path.suffix.lower() in (".jsonl", ".ndjson"):
        with path.open(encoding="utf-8", errors="replace") as handle:
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


def _keep_rejects_up_to(rejects_path: Path, last_line: int) -> None:
    """Drop reject lines written by a batch that did not commit (resume after a crash)."""
    if not rejects_path.exists():
        return
    kept = [
        line
        for line in rejects_path.read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line)["line"] <= last_line
    ]
    rejects_path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")


def _reject_line(number: int, failure: ValidationFailed) -> str:
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
    path, options = file.path, file.options
    digest = file_digest(path)
    async with file_lock(digest):
        rejects = file.rejects_path or path.with_name(path.name + ".rejects.jsonl")
        run = await ImportRun.get_or_none(file_digest=digest)
        if run is not None and run.finished_at is not None and not file.restart:
            raise ImportRefused("this file was imported already (use --restart to import it again)")
        if run is None or file.restart:
            if run is not None:
                await run.delete()
            run = await ImportRun.create(
                id=uuid.uuid4(),
                file_digest=digest,
                file_name=path.name[:255],
                source_system=options.source_system,
                started_at=clock.now(),
            )
            rejects.write_text("", encoding="utf-8")
        resumed_from = run.last_line
        _keep_rejects_up_to(rejects, run.last_line)
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
                with rejects.open("a", encoding="utf-8") as handle:
                    handle.writelines(_reject_line(number, failure) for number, failure in refused)
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

        for number, row in read_rows(path):
            total += 1
            if number <= run.last_line:
                if progress is not None:
                    progress(1)
                continue
            batch.append((number, row))
            if len(batch) >= options.batch_size:
                await flush()
        if batch:
            await flush()
        run.finished_at = clock.now()
        await run.save(update_fields=["finished_at"])
        return ImportSummary(total, resumed_from, run.created, run.matched, run.rejected, rejects)
