"""Verification through its entry points: the GraphQL queries (from the newest checkpoint),
``cdlm verify`` and the ``ledger_checkpoint`` Lambda function."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from cdlm.audit.models import AuditEntry
from cdlm.config import DatabaseTarget, Settings
from cdlm.jobs import ledger_checkpoint
from cdlm.ledgers.checkpoints import name_of
from tests.conftest import GraphQLClient
from tests.factories import gid
from tests.ledgers.support import audit_entries, local, run_job, tampering
from tests.support.lambda_invoke import installation_env, run_python
from tests.test_cli import run_cdlm

VERIFY = """{ verifyAuditChain { ok entriesChecked firstBrokenSequence firstBrokenId problem
  headHash checkpointSequence checkpointedAt } }"""


@pytest.fixture
def session_checkpoints(settings: Settings) -> Iterator[Path]:
    """The app's own checkpoint directory, emptied after the test (the database is emptied
    after every test; checkpoints of entries no longer there would not match)."""
    yield settings.checkpoint_dir
    shutil.rmtree(settings.checkpoint_dir, ignore_errors=True)


async def test_the_query_starts_at_the_newest_checkpoint(
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    settings: Settings,
    session_checkpoints: Path,
    owner: asyncpg.Connection,
) -> None:
    await audit_entries(4)
    before = (await gql(VERIFY, headers=admin_headers))["data"]["verifyAuditChain"]
    everything = await AuditEntry.all().count()
    assert (before["ok"], before["entriesChecked"], before["checkpointSequence"]) == (
        True,
        everything,
        None,
    )
    reports = await ledger_checkpoint.run(settings)
    assert reports is not None
    written = reports[0].written
    assert written is not None
    assert (session_checkpoints / name_of("audit", written.sequence)).exists()
    entries = await audit_entries(2, start=4)
    after = (await gql(VERIFY, headers=admin_headers))["data"]["verifyAuditChain"]
    newer = len([e for e in entries if e.sequence > written.sequence])
    assert (after["ok"], after["entriesChecked"], after["checkpointSequence"]) == (
        True,
        newer,
        written.sequence,
    )
    assert after["checkpointedAt"].startswith(written.checkpointed_at.date().isoformat())
    assert after["headHash"] == entries[-1].hash

    checkpointed = next(e for e in entries if e.sequence == written.sequence)
    async with tampering(owner, "audit_entries") as connection:
        await connection.execute(
            "DELETE FROM audit_entries WHERE sequence >= $1", checkpointed.sequence
        )
    cut = (await gql(VERIFY, headers=admin_headers))["data"]["verifyAuditChain"]
    assert (cut["ok"], cut["problem"], cut["firstBrokenSequence"], cut["firstBrokenId"]) == (
        False,
        "CHECKPOINT_MISMATCH",
        written.sequence,
        None,
    )


async def test_the_queries_report_a_checkpoint_missing_from_the_apps_store(
    gql: GraphQLClient, admin_headers: dict[str, str], settings: Settings, tmp_path: Path
) -> None:
    # The database recorded a checkpoint that the app's store does not hold.
    mine = local(settings, tmp_path)
    await audit_entries(1)
    written = (await run_job(mine))["audit"].written
    assert written is not None
    query = "{ verifyAuditChain { ok problem firstBrokenSequence } }"
    found = (await gql(query, headers=admin_headers))["data"]["verifyAuditChain"]
    assert found == {
        "ok": False,
        "problem": "CHECKPOINT_MISSING",
        "firstBrokenSequence": written.sequence,
    }
    consent = "{ verifyConsentLedger { ok entriesChecked checkpointSequence } }"
    ledger = (await gql(consent, headers=admin_headers))["data"]["verifyConsentLedger"]
    assert ledger == {"ok": True, "entriesChecked": 0, "checkpointSequence": None}


async def test_cdlm_verify_prints_one_line_per_ledger_and_exits_1_when_broken(
    database: DatabaseTarget, settings: Settings, tmp_path: Path, owner: asyncpg.Connection
) -> None:
    entries = await audit_entries(3)
    env = installation_env(
        database, settings.master_key_file, CDLM_CHECKPOINT_DIR=str(tmp_path / "cp")
    )
    checkpointed = run_cdlm("verify", "--checkpoint", **env)
    assert checkpointed.returncode == 0, checkpointed.stderr
    audit_line, consent_line = checkpointed.stdout.strip().splitlines()
    assert audit_line.startswith("audit: ok, 3 entries checked from the first entry; 3 entries, ")
    assert audit_line.endswith(f"; checkpoint {entries[-1].sequence}")
    assert consent_line == "consent: ok, 0 entries checked from the first entry; 0 entries, empty"
    assert (tmp_path / "cp" / name_of("audit", entries[-1].sequence)).exists()

    more = await audit_entries(1, start=3)
    verified = run_cdlm("verify", **env)
    assert verified.returncode == 0, verified.stderr
    assert f"1 entries checked since checkpoint {entries[-1].sequence} (" in verified.stdout
    assert f"head {more[-1].sequence} {more[-1].hash[:16]}" in verified.stdout

    async with tampering(owner, "audit_entries") as connection:
        await connection.execute(
            "UPDATE audit_entries SET target_id = 'x' WHERE sequence = $1", entries[0].sequence
        )
    assert run_cdlm("verify", **env).returncode == 0  # before the checkpoint: see --full
    full = run_cdlm("verify", "--full", **env)
    assert full.returncode == 1
    assert full.stdout.splitlines()[0] == (
        f"audit: BROKEN at sequence {entries[0].sequence}: CONTENT_MISMATCH "
        "(0 entries checked from the first entry)"
    )
    assert "Traceback" not in full.stderr


INVOKE = (
    "import json; from cdlm.lambda_handler import ledger_checkpoint; "
    "print(json.dumps(ledger_checkpoint({'source': 'aws.events'}, None)))"
)


async def test_the_lambda_function_checkpoints_and_fails_on_a_broken_ledger(
    database: DatabaseTarget, settings: Settings, tmp_path: Path, owner: asyncpg.Connection
) -> None:
    entries = await audit_entries(2)
    env = installation_env(
        database, settings.master_key_file, CDLM_CHECKPOINT_DIR=str(tmp_path / "cp")
    )
    result = run_python(INVOKE, env)
    assert result.returncode == 0, result.stderr[-2000:]
    answer = json.loads(result.stdout.strip().splitlines()[-1])
    audit, consent = answer["ledgers"]
    assert (audit["ledger"], audit["ok"], audit["checkpointed"], audit["count"]) == (
        "audit",
        True,
        entries[-1].sequence,
        2,
    )
    assert (consent["ledger"], consent["ok"], consent["checkpointed"]) == ("consent", True, None)

    async with tampering(owner, "audit_entries") as connection:
        await connection.execute(
            "DELETE FROM audit_entries WHERE sequence = $1", entries[-1].sequence
        )
    failed = run_python(INVOKE, env)
    assert failed.returncode != 0
    assert "ledger verification failed: audit" in failed.stderr
    assert gid("AuditEntry", entries[0].id) not in failed.stderr
