"""Checkpoints of the audit trail and the consent ledger in a write-once directory, and what
verification from them detects when the tables' owner tampers (real PostgreSQL)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from cdlm.audit.models import AuditEntry
from cdlm.config import Settings
from cdlm.consent import service as consent
from cdlm.consent.models import ConsentEntry, Decision, Method
from cdlm.core import chain
from cdlm.core.chain import ChainProblem
from cdlm.core.locks import lock_key
from cdlm.core.principal import SYSTEM
from cdlm.jobs import ledger_checkpoint
from cdlm.ledgers import verify as ledgers
from cdlm.ledgers.checkpoints import Checkpoint, StripeHead, heads_checkpoint, name_of
from cdlm.ledgers.models import LedgerCheckpoint
from cdlm.vault.service import Vault
from tests.consent.test_consent import make_purpose
from tests.factories import make_customer
from tests.ledgers.support import (
    audit_entries,
    local,
    rewrite_audit,
    run_job,
    sha256_hash,
    store_of,
    tampering,
    wrong_key_hash,
)


async def test_the_job_checkpoints_each_ledger_then_checks_only_what_came_after(
    settings: Settings, tmp_path: Path
) -> None:
    mine = local(settings, tmp_path)
    first = await audit_entries(5)
    reports = await run_job(mine)
    audit, consent_report = reports["audit"], reports["consent"]
    assert (audit.ok, audit.entries_checked, audit.checkpoint) == (True, 5, None)
    assert audit.written is not None
    assert (audit.written.sequence, audit.written.hash, audit.written.count) == (
        first[-1].sequence,
        first[-1].hash,
        5,
    )
    assert audit.written.key_id == chain.keyring().current == first[-1].key_id
    assert (consent_report.ok, consent_report.head_sequence, consent_report.written) == (
        True,
        None,
        None,
    )
    path = mine.checkpoint_dir / name_of("audit", first[-1].sequence)
    document = json.loads(path.read_bytes())
    assert {k: document[k] for k in ("ledger", "sequence", "hash", "count", "previous")} == {
        "ledger": "audit",
        "sequence": first[-1].sequence,
        "hash": first[-1].hash,
        "count": 5,
        "previous": None,
    }
    row = await LedgerCheckpoint.get(ledger="audit")
    assert (row.sequence, row.name, row.digest) == (
        first[-1].sequence,
        path.relative_to(mine.checkpoint_dir).as_posix(),
        hashlib.sha256(path.read_bytes()).hexdigest(),
    )

    everything = await audit_entries(3, start=5)
    audit = (await run_job(mine))["audit"]
    assert audit.ok
    assert audit.entries_checked == 3
    assert audit.checkpoint is not None
    assert audit.checkpoint.sequence == first[-1].sequence
    assert audit.written is not None
    assert (audit.written.sequence, audit.written.count) == (everything[-1].sequence, 8)
    assert audit.written.previous == name_of("audit", first[-1].sequence)
    assert audit.written.previous_digest == row.digest

    again = (await run_job(mine))["audit"]  # nothing new: nothing re-hashed, nothing written
    assert (again.ok, again.entries_checked) == (True, 0)
    assert len(store_of(mine).names("audit")) == 2
    assert await LedgerCheckpoint.filter(ledger="audit").count() == 2


async def test_an_entry_rewritten_after_the_checkpoint_is_found_and_nothing_is_checkpointed(
    settings: Settings, tmp_path: Path, owner: asyncpg.Connection
) -> None:
    mine = local(settings, tmp_path)
    await audit_entries(3)
    await run_job(mine)
    entries = await audit_entries(3, start=3)
    async with tampering(owner, "audit_entries") as connection:
        await connection.execute(
            "UPDATE audit_entries SET action = 'job.skipped' WHERE sequence = $1",
            entries[4].sequence,
        )
    audit = (await run_job(mine))["audit"]
    assert (audit.ok, audit.problem, audit.first_broken_sequence, audit.first_broken_id) == (
        False,
        ChainProblem.CONTENT_MISMATCH,
        entries[4].sequence,
        entries[4].id,
    )
    assert audit.entries_checked == 1  # entries[3], the one after the checkpoint before it
    assert audit.written is None
    assert len(store_of(mine).names("audit")) == 1


async def test_a_trail_truncated_and_rechained_with_sha256_is_detected_at_the_checkpoint(
    settings: Settings, tmp_path: Path, owner: asyncpg.Connection
) -> None:
    mine = local(settings, tmp_path)
    entries = await audit_entries(4)
    checkpointed = entries[-1]
    await run_job(mine)

    def hide(entry: AuditEntry) -> None:
        entry.action = "job.run" if entry.action != "job.run" else "job.noop"

    # Everything replaced by plain SHA-256 entries: a consistent chain, but not the one
    # checkpointed (its hash was keyed, which the forger cannot compute).
    await rewrite_audit(owner, entries, 0, sha256_hash, hide)
    for full in (False, True):
        report = await ledgers.verify(ledgers.AUDIT, store_of(mine), full=full)
        assert (report.ok, report.problem, report.first_broken_sequence) == (
            False,
            ChainProblem.CHECKPOINT_MISMATCH,
            checkpointed.sequence,
        )
    # Without the checkpoint (its file and its row gone), the legacy chain would verify:
    # what the write-once store is for.
    await owner.execute("DELETE FROM ledger_checkpoints")
    legacy = await ledgers.verify(ledgers.AUDIT, store_of(local(settings, tmp_path / "none")))
    assert legacy.ok
    assert legacy.head_key_id is None


async def test_a_rewrite_under_a_wrong_key_is_detected_before_and_after_the_checkpoint(
    settings: Settings, tmp_path: Path, owner: asyncpg.Connection
) -> None:
    mine = local(settings, tmp_path)
    await audit_entries(3)
    await run_job(mine)
    entries = await audit_entries(3, start=3)
    current = chain.keyring().current

    def hide(entry: AuditEntry) -> None:
        entry.target_id = "elsewhere"

    await rewrite_audit(owner, entries, 4, wrong_key_hash(current), hide)
    after = await ledgers.verify(ledgers.AUDIT, store_of(mine))
    assert (after.problem, after.first_broken_sequence) == (
        ChainProblem.CONTENT_MISMATCH,
        entries[4].sequence,
    )
    entries = list(await AuditEntry.all().order_by("sequence"))
    await rewrite_audit(owner, entries, 1, wrong_key_hash(current), hide)
    through = await ledgers.verify(ledgers.AUDIT, store_of(mine))
    assert (through.problem, through.first_broken_sequence) == (
        ChainProblem.CHECKPOINT_MISMATCH,
        entries[2].sequence,
    )
    full = await ledgers.verify(ledgers.AUDIT, store_of(mine), full=True)
    assert (full.problem, full.first_broken_sequence, full.entries_checked) == (
        ChainProblem.CONTENT_MISMATCH,
        entries[1].sequence,
        1,
    )


async def test_a_deleted_tail_or_an_entry_deleted_before_the_checkpoint_is_detected(
    settings: Settings, tmp_path: Path, owner: asyncpg.Connection
) -> None:
    mine = local(settings, tmp_path)
    entries = await audit_entries(5)
    await run_job(mine)
    async with tampering(owner, "audit_entries") as connection:
        await connection.execute(
            "DELETE FROM audit_entries WHERE sequence >= $1", entries[3].sequence
        )
    for full in (False, True):
        report = await ledgers.verify(ledgers.AUDIT, store_of(mine), full=full)
        assert (report.problem, report.first_broken_sequence, report.first_broken_id) == (
            ChainProblem.CHECKPOINT_MISMATCH,
            entries[4].sequence,
            None,
        )

    other = local(settings, tmp_path / "other")
    await owner.execute(
        "BEGIN; SET LOCAL session_replication_role = replica; DELETE FROM audit_entries; "
        "DELETE FROM ledger_checkpoints; COMMIT;"
    )
    entries = await audit_entries(5)
    await run_job(other)
    # An entry before the checkpoint goes (the checkpointed entry and what follows it are
    # untouched): the count of entries up to the checkpoint tells.
    async with tampering(owner, "audit_entries") as connection:
        await connection.execute(
            "DELETE FROM audit_entries WHERE sequence = $1", entries[1].sequence
        )
    report = await ledgers.verify(ledgers.AUDIT, store_of(other))
    assert (report.problem, report.first_broken_sequence, report.first_broken_id) == (
        ChainProblem.CHECKPOINT_MISMATCH,
        entries[4].sequence,
        entries[4].id,
    )


async def test_a_content_rewrite_before_the_checkpoint_needs_the_full_walk(
    settings: Settings, tmp_path: Path, owner: asyncpg.Connection
) -> None:
    # What incremental verification does not see (documented): an entry before the
    # checkpoint edited with its stored hash left alone. `cdlm verify --full` finds it.
    mine = local(settings, tmp_path)
    entries = await audit_entries(4)
    await run_job(mine)
    async with tampering(owner, "audit_entries") as connection:
        await connection.execute(
            "UPDATE audit_entries SET action = 'job.cancelled' WHERE sequence = $1",
            entries[1].sequence,
        )
    assert (await ledgers.verify(ledgers.AUDIT, store_of(mine))).ok
    full = await ledgers.verify(ledgers.AUDIT, store_of(mine), full=True)
    assert (full.problem, full.first_broken_sequence) == (
        ChainProblem.CONTENT_MISMATCH,
        entries[1].sequence,
    )


async def test_a_checkpoint_missing_from_the_store_is_noticed(
    settings: Settings, tmp_path: Path, owner: asyncpg.Connection
) -> None:
    mine = local(settings, tmp_path)
    first = await audit_entries(2)
    await run_job(mine)
    second = await audit_entries(2, start=2)
    await run_job(mine)
    newest = mine.checkpoint_dir / name_of("audit", second[-1].sequence)
    older = mine.checkpoint_dir / name_of("audit", first[-1].sequence)

    newest.rename(tmp_path / "moved.json")
    report = await ledgers.verify(ledgers.AUDIT, store_of(mine))
    assert (report.ok, report.problem, report.first_broken_sequence) == (
        False,
        ChainProblem.CHECKPOINT_MISSING,
        second[-1].sequence,
    )
    assert (await run_job(mine))["audit"].written is None  # nothing is written over a gap
    (tmp_path / "moved.json").rename(newest)
    assert (await ledgers.verify(ledgers.AUDIT, store_of(mine))).ok

    # The older one goes, and its row too (the owner): the newer one names it.
    older.unlink()
    await owner.execute("DELETE FROM ledger_checkpoints WHERE sequence = $1", first[-1].sequence)
    report = await ledgers.verify(ledgers.AUDIT, store_of(mine))
    assert (report.problem, report.first_broken_sequence) == (
        ChainProblem.CHECKPOINT_MISSING,
        first[-1].sequence,
    )


async def test_a_checkpoint_forged_in_the_store_is_refused(
    settings: Settings, tmp_path: Path, owner: asyncpg.Connection
) -> None:
    mine = local(settings, tmp_path)
    entries = await audit_entries(3)
    await run_job(mine)
    await rewrite_audit(owner, entries, 0, sha256_hash)
    # The forger writes a checkpoint of their chain; without the ledger key its MAC fails.
    path = mine.checkpoint_dir / name_of("audit", entries[-1].sequence)
    document = json.loads(path.read_bytes())
    document.update(hash=entries[-1].hash, key_id=None)
    path.unlink()
    path.write_text(json.dumps(document))
    report = await ledgers.verify(ledgers.AUDIT, store_of(mine))
    assert (report.problem, report.first_broken_sequence) == (
        ChainProblem.CHECKPOINT_MISSING,
        entries[-1].sequence,
    )


async def test_legacy_entries_stay_valid_as_a_prefix_and_never_after_a_keyed_one(
    settings: Settings, tmp_path: Path, owner: asyncpg.Connection
) -> None:
    mine = local(settings, tmp_path)
    written = await audit_entries(2)
    # As the trail was before ledgers were keyed: the same entries with SHA-256 hashes.
    await rewrite_audit(owner, written, 0, sha256_hash)
    entries = await audit_entries(2, start=2)
    current = chain.keyring().current
    assert [e.key_id for e in entries] == [None, None, current, current]
    report = (await run_job(mine, full=True))["audit"]
    assert report.ok
    assert report.entries_checked == 4
    assert report.written is not None
    assert report.written.key_id == chain.keyring().current

    more = await audit_entries(2, start=4)
    await rewrite_audit(owner, more, 5, sha256_hash)  # a plain entry appended at the end
    for full in (False, True):
        broken = await ledgers.verify(ledgers.AUDIT, store_of(mine), full=full)
        assert (broken.problem, broken.first_broken_sequence) == (
            ChainProblem.UNKEYED_AFTER_KEYED,
            more[5].sequence,
        )


async def test_a_new_key_starts_without_rehashing_and_a_lost_old_key_is_reported(
    settings: Settings, tmp_path: Path
) -> None:
    mine = local(settings, tmp_path)
    before = chain.keyring()
    old = await audit_entries(2)
    rotated = chain.Keyring("k-next", {"k-next": b"n" * 48, **before.keys})
    try:
        chain.use_keyring(rotated)
        entries = await audit_entries(2, start=2)
        assert [e.key_id for e in entries] == [before.current] * 2 + ["k-next"] * 2
        report = (await run_job(mine, full=True))["audit"]
        assert report.ok
        assert report.written is not None
        assert report.written.key_id == "k-next"
        chain.use_keyring(chain.Keyring("k-next", {"k-next": b"n" * 48}))
        lost = await ledgers.verify(ledgers.AUDIT, store_of(mine), full=True)
        assert (lost.problem, lost.first_broken_sequence) == (
            ChainProblem.UNKNOWN_KEY,
            old[0].sequence,
        )
    finally:
        chain.use_keyring(before)


async def test_the_consent_ledger_is_checkpointed_and_its_tampering_found(
    settings: Settings, tmp_path: Path, owner: asyncpg.Connection, vault: Vault
) -> None:
    mine = local(settings, tmp_path)
    await make_purpose("newsletter")
    customer = (await make_customer(vault, email="c@example.com")).customer_id

    async def decide(decision: Decision) -> None:
        await consent.record(
            SYSTEM,
            vault,
            consent.ConsentRecording(
                customer, [consent.Choice("newsletter", decision, 1)], consent.Capture(Method.API)
            ),
        )

    await decide(Decision.GRANTED)
    await decide(Decision.WITHDRAWN)
    report = (await run_job(mine))["consent"]
    entries = list(await ConsentEntry.all().order_by("sequence"))
    assert report.written is not None
    assert (report.written.sequence, report.written.count) == (entries[-1].sequence, 2)
    assert {e.key_id for e in entries} == {chain.keyring().current}

    await decide(Decision.GRANTED)
    entries = list(await ConsentEntry.all().order_by("sequence"))
    async with tampering(owner, "consent_entries") as connection:
        await connection.execute(
            "UPDATE consent_entries SET decision = 'denied' WHERE sequence = $1",
            entries[2].sequence,
        )
    after = (await run_job(mine))["consent"]
    assert (after.problem, after.first_broken_sequence, after.entries_checked) == (
        ChainProblem.CONTENT_MISMATCH,
        entries[2].sequence,
        0,
    )
    async with tampering(owner, "consent_entries") as connection:
        await connection.execute(
            "UPDATE consent_entries SET decision = 'granted' WHERE sequence = $1",
            entries[2].sequence,
        )
        await connection.execute(
            "DELETE FROM consent_entries WHERE sequence = $1", entries[1].sequence
        )
    gone = await ledgers.verify(ledgers.CONSENT, store_of(mine))
    assert (gone.problem, gone.first_broken_sequence) == (
        ChainProblem.CHECKPOINT_MISMATCH,
        entries[1].sequence,
    )


async def test_a_second_run_while_one_holds_the_lock_does_nothing(
    settings: Settings, tmp_path: Path, owner: asyncpg.Connection
) -> None:
    mine = local(settings, tmp_path)
    await audit_entries(1)
    await owner.execute("SELECT pg_advisory_lock($1)", lock_key(ledger_checkpoint.LOCK_NAME))
    try:
        assert await ledger_checkpoint.run(mine) is None
    finally:
        await owner.execute("SELECT pg_advisory_unlock($1)", lock_key(ledger_checkpoint.LOCK_NAME))
    assert store_of(mine).names("audit") == []
    assert (await run_job(mine))["audit"].written is not None


async def test_verifying_without_writing_leaves_the_store_alone(
    settings: Settings, tmp_path: Path
) -> None:
    mine = local(settings, tmp_path)
    await audit_entries(2)
    reports = await run_job(mine, write=False)
    assert reports["audit"].ok
    assert reports["audit"].written is None
    assert store_of(mine).names("audit") == []
    assert not await LedgerCheckpoint.exists()


def test_a_checkpoint_document_holds_no_more_than_positions_and_hashes() -> None:
    keys = chain.Keyring("k1", {"k1": b"k" * 40})
    made = heads_checkpoint(
        "audit",
        (StripeHead(0, 7, "a" * 64, 5, "k1"), StripeHead(3, 6, "e" * 64, 2, "k1")),
        datetime(2026, 12, 1, tzinfo=UTC),
    )
    document = json.loads(made.document(keys))
    assert set(document) == {
        "format", "ledger", "sequence", "hash", "count", "key_id", "checkpointed_at",
        "previous", "previous_digest", "stripes", "mac_key_id", "mac",
    }  # fmt: skip
    assert [set(head) for head in document["stripes"]] == [
        {"stripe", "sequence", "hash", "count", "key_id"}
    ] * 2
    assert Checkpoint.parse(made.document(keys), keys) == made
