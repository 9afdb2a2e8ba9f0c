"""cdlm import: batches, rejects with reasons, resume after a crash, refusing a second run."""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import pytest

from cdlm.config import DatabaseTarget, Settings
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.vocabulary import LawfulBasis, SourceKind
from cdlm.customers import importer
from cdlm.customers.importer import (
    FileImport,
    ImportOptions,
    ImportRefused,
    ImportSummary,
    run_import,
)
from cdlm.customers.ingest import ingest_batch
from cdlm.customers.models import Customer, ImportRun, SourceRecord
from cdlm.vault.service import Vault
from tests.support.lambda_invoke import ROOT, cdlm_env, database_url
from tests.test_cli import run_cdlm

OPTIONS = ImportOptions(
    "legacy-crm", SourceKind.IMPORT, LawfulBasis.CONTRACT, "essential.service", batch_size=4
)
BUSY = "this file is being imported by another run; wait for it to finish"
HEADER = "email,given_name,family_name,phone,country,external_ids,lifecycle_stage\n"


def write_csv(path: Path, rows: int, *, bad_every: int = 0) -> Path:
    """Rows of people; every ``bad_every``-th has no usable identifier (so it is refused)."""
    lines = [HEADER]
    for n in range(rows):
        if bad_every and n % bad_every == bad_every - 1:
            lines.append(f"not-an-email,Given{n},Family{n},,GB,,active\n")
        else:
            lines.append(
                f"p{n}@example.com,Given{n},Family{n},+44 7911 {100000 + n},GB,legacy:{n + 1000},"
                "active\n"
            )
    path.write_text("".join(lines), encoding="utf-8")
    return path


async def test_import_counts_rejects_with_reasons_and_no_values(
    tmp_path: Path, vault: Vault
) -> None:
    source = write_csv(tmp_path / "people.csv", 10, bad_every=5)
    # Line with only a blocked identifier: refused whole.
    with source.open("a", encoding="utf-8") as handle:
        handle.write("test@test.com,Nobody,,,,,\n")
    summary = await run_import(SYSTEM, vault, FileImport(source, OPTIONS))
    assert (summary.total_lines, summary.created, summary.rejected) == (11, 8, 3)
    assert await Customer.all().count() == 8
    rejects = [json.loads(line) for line in summary.rejects_path.read_text().splitlines()]
    assert [r["line"] for r in rejects] == [6, 11, 12]
    assert {i["code"] for i in rejects[0]["issues"]} == {"INVALID_FORMAT", "REQUIRED"}
    assert {i["code"] for i in rejects[2]["issues"]} == {"BLOCKED_IDENTIFIER", "REQUIRED"}
    assert "test@test.com" not in summary.rejects_path.read_text()
    run = await ImportRun.get(file_digest=importer.file_digest(source))
    assert run.finished_at is not None
    assert run.last_line == 12


async def test_an_interrupted_import_resumes_without_double_work(
    tmp_path: Path, vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_csv(tmp_path / "crash.csv", 14, bad_every=7)
    original = importer.ingest_batch
    calls = {"n": 0}

    async def crashing(
        vault_: Vault, records: list[importer.CustomerIngest], *rest: object
    ) -> list[object]:
        calls["n"] += 1
        if calls["n"] == 3:  # the third batch fails half-way
            await original(vault_, records[:2], *rest)  # type: ignore[arg-type]
            raise RuntimeError("power cut")
        return await original(vault_, records, *rest)  # type: ignore[arg-type, return-value]

    monkeypatch.setattr(importer, "ingest_batch", crashing)
    with pytest.raises(RuntimeError, match="power cut"):
        await run_import(SYSTEM, vault, FileImport(source, OPTIONS))
    run = await ImportRun.get(file_digest=importer.file_digest(source))
    assert run.last_line == 9  # two batches of 4 committed (lines 2-9); the third rolled back
    assert await Customer.all().count() == 8 - 1  # one of those 8 was refused
    monkeypatch.setattr(importer, "ingest_batch", original)
    summary = await run_import(SYSTEM, vault, FileImport(source, OPTIONS))
    assert summary.resumed_from == 9
    assert (summary.created, summary.matched, summary.rejected) == (12, 0, 2)
    assert await Customer.all().count() == 12
    rejected_lines = [
        json.loads(row)["line"] for row in summary.rejects_path.read_text().splitlines()
    ]
    assert rejected_lines == [8, 15]


async def test_a_finished_file_is_not_imported_twice_unless_restarted(
    tmp_path: Path, vault: Vault
) -> None:
    source = write_csv(tmp_path / "once.csv", 3)
    await run_import(SYSTEM, vault, FileImport(source, OPTIONS))
    with pytest.raises(ImportRefused, match="imported already"):
        await run_import(SYSTEM, vault, FileImport(source, OPTIONS))
    again = await run_import(SYSTEM, vault, FileImport(source, OPTIONS, restart=True))
    assert (again.created, again.matched) == (0, 3)
    assert await Customer.all().count() == 3


async def test_jsonl_with_malformed_lines(tmp_path: Path, vault: Vault) -> None:
    source = tmp_path / "people.jsonl"
    source.write_text(
        json.dumps({"email": "j1@example.com", "external_ids": ["shop:1"]})
        + "\n"
        + "{not json\n"
        + json.dumps(["a list"])
        + "\n"
        + json.dumps({"email": "j2@example.com", "shoe_size": 44})
        + "\n",
        encoding="utf-8",
    )
    summary = await run_import(SYSTEM, vault, FileImport(source, OPTIONS))
    assert (summary.created, summary.rejected) == (1, 3)
    codes = [
        json.loads(row)["issues"][0]["code"]
        for row in summary.rejects_path.read_text().splitlines()
    ]
    assert codes == ["INVALID_FORMAT"] * 3


def test_unknown_csv_columns_and_suffixes_are_refused(tmp_path: Path) -> None:
    bad = tmp_path / "x.csv"
    bad.write_text("email,favourite_colour\n", encoding="utf-8")
    with pytest.raises(ImportRefused, match="unknown columns: favourite_colour"):
        importer.count_rows(bad)
    with pytest.raises(ImportRefused, match=r"\.csv or \.jsonl"):
        importer.count_rows(tmp_path / "x.xlsx")


async def test_cli_import(tmp_path: Path, database: object, settings: Settings) -> None:
    source = write_csv(tmp_path / "cli.csv", 6, bad_every=3)
    key = {"CDLM_MASTER_KEY_FILE": str(settings.master_key_file)}
    wrong = run_cdlm(
        "import",
        str(source),
        "--source-system",
        "legacy-crm",
        DATABASE_URL=database_url(database),  # type: ignore[arg-type]
        CDLM_MASTER_KEY_FILE=str(tmp_path / "other.key"),
    )
    assert wrong.returncode == 2
    assert wrong.stderr == (
        "cdlm: configuration error: CDLM_MASTER_KEY_FILE: is not the master key of this "
        "database (its keys do not open)\n"
    )
    result = run_cdlm(
        "import",
        str(source),
        "--source-system",
        "legacy-crm",
        "--batch-size",
        "2",
        DATABASE_URL=database_url(database),  # type: ignore[arg-type]
        **key,
    )
    assert result.returncode == 0, result.stderr
    assert "6 records: 4 created, 0 matched, 2 rejected" in result.stdout, result.stdout
    assert "cli.csv.rejects.jsonl" in result.stdout
    refused = run_cdlm(
        "import",
        str(source),
        "--source-system",
        "legacy-crm",
        DATABASE_URL=database_url(database),  # type: ignore[arg-type]
        **key,
    )
    assert refused.returncode == 1
    assert "imported already" in refused.stderr


@pytest.mark.parametrize("interrupted", [False, True], ids=["new", "resumed"])
async def test_two_runs_of_the_same_file_at_once_import_it_once(
    tmp_path: Path, vault: Vault, interrupted: bool
) -> None:
    source = write_csv(tmp_path / "twice.csv", 12)
    if interrupted:  # an earlier run died before its first batch: both runs would resume it
        await ImportRun.create(
            id=uuid.uuid4(),
            file_digest=importer.file_digest(source),
            file_name=source.name,
            source_system=OPTIONS.source_system,
            started_at=clock.now(),
        )
    results = await asyncio.gather(
        run_import(SYSTEM, vault, FileImport(source, OPTIONS)),
        run_import(SYSTEM, vault, FileImport(source, OPTIONS)),
        return_exceptions=True,
    )
    summaries = [r for r in results if isinstance(r, ImportSummary)]
    refusals = [r for r in results if isinstance(r, ImportRefused)]
    assert (len(summaries), len(refusals)) == (1, 1), results
    assert str(refusals[0]) == BUSY
    assert (summaries[0].created, summaries[0].matched) == (12, 0)
    assert await SourceRecord.all().count() == 12
    assert await Customer.all().count() == 12


IngestBatch = Callable[..., Awaitable[Sequence[object]]]


def pausing_ingest(
    original: IngestBatch, *, crash_at: int | None = None
) -> tuple[IngestBatch, asyncio.Event, asyncio.Event]:
    """``ingest_batch`` that stops in its second batch until released (``paused``/``resume``),
    and fails half-way through batch ``crash_at``."""
    paused, resume = asyncio.Event(), asyncio.Event()
    calls = {"n": 0}

    async def ingest(vault_: Vault, records: list[object], *rest: object) -> Sequence[object]:
        calls["n"] += 1
        if calls["n"] == 2:
            paused.set()
            await resume.wait()
        if calls["n"] == crash_at:
            await original(vault_, records[:2], *rest)
            raise RuntimeError("power cut")
        return await original(vault_, records, *rest)

    return ingest, paused, resume


async def test_after_a_refused_second_run_the_file_resumes_normally(
    tmp_path: Path, vault: Vault, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = write_csv(tmp_path / "busy.csv", 14, bad_every=7)
    ingest, paused, resume = pausing_ingest(ingest_batch, crash_at=3)
    monkeypatch.setattr(importer, "ingest_batch", ingest)
    first = asyncio.create_task(run_import(SYSTEM, vault, FileImport(source, OPTIONS)))
    await asyncio.wait_for(paused.wait(), 30)
    with pytest.raises(ImportRefused) as refused:
        await run_import(SYSTEM, vault, FileImport(source, OPTIONS))
    assert str(refused.value) == BUSY
    resume.set()
    with pytest.raises(RuntimeError, match="power cut"):
        await first  # the running one goes on after the refusal, and then fails
    monkeypatch.setattr(importer, "ingest_batch", ingest_batch)

    summary = await run_import(SYSTEM, vault, FileImport(source, OPTIONS))
    assert summary.resumed_from == 9
    assert (summary.created, summary.matched, summary.rejected) == (12, 0, 2)
    assert await SourceRecord.all().count() == 12
    rejected_lines = [
        json.loads(row)["line"] for row in summary.rejects_path.read_text().splitlines()
    ]
    assert rejected_lines == [8, 15]
    with pytest.raises(ImportRefused, match="imported already"):
        await run_import(SYSTEM, vault, FileImport(source, OPTIONS))
    again = await run_import(SYSTEM, vault, FileImport(source, OPTIONS, restart=True))
    assert (again.created, again.matched) == (0, 12)


async def test_cli_import_refuses_a_file_another_run_is_importing(
    tmp_path: Path,
    vault: Vault,
    database: DatabaseTarget,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    source = write_csv(tmp_path / "shared.csv", 10)
    ingest, paused, resume = pausing_ingest(ingest_batch)
    monkeypatch.setattr(importer, "ingest_batch", ingest)
    running = asyncio.create_task(run_import(SYSTEM, vault, FileImport(source, OPTIONS)))
    await asyncio.wait_for(paused.wait(), 30)
    try:
        refused = await asyncio.to_thread(
            run_cdlm,
            "import",
            str(source),
            "--source-system",
            "legacy-crm",
            DATABASE_URL=database_url(database),
            CDLM_MASTER_KEY_FILE=str(settings.master_key_file),
        )
    finally:
        resume.set()
        summary = await running
    assert refused.returncode == 1
    assert refused.stderr == f"cdlm: {BUSY}\n"
    assert summary.created == 10
    assert await SourceRecord.all().count() == 10


def test_cli_import_with_a_one_connection_pool(
    tmp_path: Path, database: DatabaseTarget, settings: Settings
) -> None:
    """The file's lock keeps a connection for the run: the batches still get one of their own."""
    source = write_csv(tmp_path / "narrow.csv", 3)
    result = run_cdlm(
        "import",
        str(source),
        "--source-system",
        "legacy-crm",
        DATABASE_URL=database_url(database),
        CDLM_MASTER_KEY_FILE=str(settings.master_key_file),
        CDLM_DB_POOL_MAX="1",
    )
    assert result.returncode == 0, result.stderr
    assert "3 records: 3 created" in result.stdout, result.stdout


async def test_a_killed_run_leaves_the_file_free_to_resume(
    tmp_path: Path, vault: Vault, database: DatabaseTarget, settings: Settings
) -> None:
    rows = 400
    source = write_csv(tmp_path / "killed.csv", rows)
    digest = importer.file_digest(source)
    process = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "cdlm", "import", str(source)),
        *("--source-system", "legacy-crm", "--batch-size", "1"),
        cwd=ROOT,
        env=cdlm_env(
            DATABASE_URL=database_url(database),
            CDLM_MASTER_KEY_FILE=str(settings.master_key_file),
        ),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while not await ImportRun.filter(file_digest=digest, last_line__gt=1).exists():
            assert process.returncode is None, "the import process ended early"
            assert time.monotonic() < deadline, "the import process made no progress"
            await asyncio.sleep(0.05)
        with pytest.raises(ImportRefused) as refused:  # the other process holds the file
            await run_import(SYSTEM, vault, FileImport(source, OPTIONS))
        assert str(refused.value) == BUSY
    finally:
        process.kill()
        await process.wait()
    run = await ImportRun.get(file_digest=digest)
    assert run.finished_at is None
    summary = None
    for _ in range(100):  # the server ends the dead process's session, and its lock, promptly
        try:
            summary = await run_import(SYSTEM, vault, FileImport(source, OPTIONS))
            break
        except ImportRefused as error:
            if str(error) != BUSY:
                raise
            await asyncio.sleep(0.1)
    assert summary is not None, "the killed run's lock was never released"
    assert summary.resumed_from >= run.last_line > 1
    assert summary.created == rows
    assert await SourceRecord.all().count() == rows
