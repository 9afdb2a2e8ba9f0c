"""Striped ledgers: writers to different stripes do not wait for each other, writers to one
stripe still queue, and verification per stripe finds what was done to one of them."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.audit.models import AuditEntry
from cdlm.config import Settings
from cdlm.consent import merging
from cdlm.consent import service as consent
from cdlm.consent.models import ConsentEntry, Decision, Method
from cdlm.core import chain
from cdlm.core.chain import ChainProblem
from cdlm.core.principal import SYSTEM
from cdlm.core.stripes import STRIPES, StripedTable
from cdlm.ledgers import verify as ledgers
from cdlm.ledgers.checkpoints import Checkpoint, StripeHead, heads_checkpoint
from cdlm.vault.service import Vault
from tests.consent.test_consent import make_purpose
from tests.factories import make_customer
from tests.ledgers.support import audit_entries, local, run_job, store_of, tampering, target_in

#: A guard against a hang, never a measurement: a test fails, rather than hangs, if a writer
#: that should not wait does.
GUARD = 30.0


async def waiting_for(striped: StripedTable, stripe: int) -> int:
    """How many transactions wait for ``stripe``'s lock now (from pg_locks)."""
    key = striped.lock_key(stripe)
    rows = await get_connection("default").execute_query_dict(
        "SELECT count(*) AS \"n\" FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
        "AND classid::bigint = $1 AND objid::bigint = $2 AND objsubid = 1",
        [(key >> 32) & 0xFFFFFFFF, key & 0xFFFFFFFF],
    )
    return int(rows[0]["n"])


@contextlib.asynccontextmanager
async def holding(write: Awaitable[Any]) -> AsyncIterator[list[Any]]:
    """Run ``write`` in a transaction kept open (its stripe locked) until the block ends; the
    block gets what ``write`` returned."""
    written: list[Any] = []
    done, release = asyncio.Event(), asyncio.Event()

    async def hold() -> None:
        async with in_transaction():
            written.append(await write)
            done.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await asyncio.wait_for(done.wait(), GUARD)
    try:
        yield written
    finally:
        release.set()
        await holder


async def until_waiting(striped: StripedTable, stripe: int, task: asyncio.Task[Any]) -> None:
    """Return once ``task`` is seen queued for ``stripe``'s lock (polled in PostgreSQL)."""
    for _ in range(int(GUARD / 0.02)):
        if await waiting_for(striped, stripe):
            return
        assert not task.done(), "the writer did not wait for the stripe's lock"
        await asyncio.sleep(0.02)
    raise AssertionError("the writer never queued for the stripe's lock")


def record_job(stripe: int, number: int) -> Awaitable[AuditEntry]:
    return audit.record(SYSTEM, "job.run", target_type="job", target_id=target_in(stripe, number))


# ----------------------------------------------------------------------- writers


async def test_audit_writers_to_different_stripes_do_not_wait_for_each_other() -> None:
    async with holding(record_job(1, 0)) as held:
        # While the first transaction is open (its entry not committed), another stripe's
        # writer appends and commits.
        other = await asyncio.wait_for(record_job(2, 1), GUARD)
        assert await waiting_for(audit.LEDGER, 1) == 0
        committed = await AuditEntry.all().values_list("id", flat=True)
        assert list(committed) == [other.id]
    (first,) = held
    assert (first.stripe, other.stripe) == (1, 2)
    assert first.prev_hash == other.prev_hash == chain.GENESIS_HASH
    assert (await audit.verify_chain()).ok


async def test_audit_writers_to_one_stripe_still_queue_and_chain_in_order() -> None:
    async with holding(record_job(4, 0)) as held:
        second = asyncio.create_task(record_job(4, 1))
        await until_waiting(audit.LEDGER, 4, second)
        assert await AuditEntry.all().count() == 0
    entry = await asyncio.wait_for(second, GUARD)
    (first,) = held
    assert entry.prev_hash == first.hash
    assert entry.sequence > first.sequence
    assert (await audit.verify_chain()).ok


async def test_a_transaction_keeps_its_audit_writes_in_one_stripe() -> None:
    targets = [target_in(stripe, stripe) for stripe in (5, 6, 7)]
    async with in_transaction():
        for target in targets:
            await audit.record(SYSTEM, "job.run", target_type="job", target_id=target)
        many = await audit.record_many(
            SYSTEM, "job.run", target_type="job", target_ids=[target_in(8, 9)]
        )
    entries = list(await AuditEntry.all().order_by("sequence"))
    assert [e.stripe for e in entries] == [5, 5, 5, 5]
    assert [e.prev_hash for e in entries[1:]] == [e.hash for e in entries[:-1]]
    assert many[0].id == entries[-1].id
    # A new transaction starts afresh: its first target decides again.
    assert (await record_job(8, 10)).stripe == 8


async def consent_customers(vault: Vault, count: int) -> list[uuid.UUID]:
    """Customers in ``count`` different consent stripes."""
    found: dict[int, uuid.UUID] = {}
    while len(found) < count:
        customer = (await make_customer(vault, email=f"s{len(found)}@example.com")).customer_id
        found.setdefault(consent.stripe_of_customer(customer), customer)
    return list(found.values())


def grant(vault: Vault, customer: uuid.UUID) -> Awaitable[tuple[list[uuid.UUID], bool]]:
    return consent.record(
        SYSTEM,
        vault,
        consent.ConsentRecording(
            customer,
            [consent.Choice("newsletter", Decision.GRANTED, 1)],
            consent.Capture(Method.FORM),
        ),
    )


async def test_consent_writers_for_customers_of_different_stripes_do_not_wait(
    vault: Vault,
) -> None:
    await make_purpose("newsletter")
    one, other = await consent_customers(vault, 2)
    async with holding(grant(vault, one)):
        (ids, _) = await asyncio.wait_for(grant(vault, other), GUARD)
        assert [e.id for e in await ConsentEntry.all()] == ids
    entries = {e.customer_id: e for e in await ConsentEntry.all()}
    assert entries[one].stripe == consent.stripe_of_customer(one)
    assert entries[other].stripe == consent.stripe_of_customer(other)
    assert entries[one].stripe != entries[other].stripe
    assert (await consent.verify_ledger()).ok


async def test_consent_writers_of_one_stripe_queue(vault: Vault) -> None:
    await make_purpose("newsletter")
    (customer,) = await consent_customers(vault, 1)
    stripe = consent.stripe_of_customer(customer)
    # Another customer's writer of the same stripe holds it (a merge, say): this one queues.
    async with holding(consent.LEDGER.lock([stripe])):
        second = asyncio.create_task(grant(vault, customer))
        await until_waiting(consent.LEDGER, stripe, second)
    (ids, _) = await asyncio.wait_for(second, GUARD)
    (entry,) = await ConsentEntry.filter(id__in=ids)
    assert (entry.stripe, entry.prev_hash) == (stripe, chain.GENESIS_HASH)


# ----------------------------------------------------------------------- tampering


async def test_a_deleted_tail_of_one_stripe_is_found_at_its_checkpointed_head(
    settings: Settings, tmp_path: Path, owner: asyncpg.Connection
) -> None:
    mine = local(settings, tmp_path)
    kept = await audit_entries(3, stripe=3)
    cut = await audit_entries(3, start=3, stripe=5)
    written = (await run_job(mine))["audit"].written
    assert written is not None
    assert written.heads()[5] == StripeHead(5, cut[-1].sequence, cut[-1].hash, 3, cut[-1].key_id)
    assert written.heads()[3].count == 3
    assert (written.count, written.sequence) == (6, max(cut[-1].sequence, kept[-1].sequence))
    async with tampering(owner, "audit_entries") as connection:
        await connection.execute("DELETE FROM audit_entries WHERE sequence = $1", cut[-1].sequence)
    report = (await run_job(mine))["audit"]
    assert (report.ok, report.problem, report.first_broken_sequence) == (
        False,
        ChainProblem.CHECKPOINT_MISMATCH,
        cut[-1].sequence,
    )
    # Without the checkpoint the stripe would look whole: the chain alone cannot tell.
    assert (await audit.verify_chain()).ok


async def test_an_entry_moved_to_another_stripe_breaks_both_and_the_lowest_is_reported(
    owner: asyncpg.Connection,
) -> None:
    three = await audit_entries(3, stripe=3)
    await audit_entries(2, start=3, stripe=5)
    moved = three[1]
    async with tampering(owner, "audit_entries") as connection:
        await connection.execute(
            "UPDATE audit_entries SET stripe = 5 WHERE sequence = $1", moved.sequence
        )
    report = await audit.verify_chain()
    # Stripe 3 breaks at the entry after the one taken out, stripe 5 at the entry put in (its
    # hash covers its stripe); the lower sequence is reported.
    assert (report.ok, report.first_broken_sequence, report.first_broken_id, report.problem) == (
        False,
        moved.sequence,
        moved.id,
        ChainProblem.PREVIOUS_HASH_MISMATCH,
    )


async def test_an_entry_moved_outside_the_stripes_is_found(
    settings: Settings, tmp_path: Path, owner: asyncpg.Connection
) -> None:
    mine = local(settings, tmp_path)
    entries = await audit_entries(2, stripe=3)
    assert (await run_job(mine))["audit"].ok
    async with tampering(owner, "audit_entries") as connection:
        await connection.execute(
            "UPDATE audit_entries SET stripe = $1 WHERE sequence = $2",
            STRIPES + 40,
            entries[-1].sequence,
        )
    report = (await run_job(mine))["audit"]
    assert (report.ok, report.first_broken_sequence, report.problem) == (
        False,
        entries[-1].sequence,
        ChainProblem.CHECKPOINT_MISMATCH,
    )
    full = await audit.verify_chain()
    assert (full.ok, full.first_broken_sequence, full.problem) == (
        False,
        entries[-1].sequence,
        ChainProblem.PREVIOUS_HASH_MISMATCH,
    )


async def test_verification_from_a_checkpoint_walks_only_what_each_stripe_added(
    settings: Settings, tmp_path: Path
) -> None:
    mine = local(settings, tmp_path)
    await audit_entries(4, stripe=3)
    await audit_entries(2, start=4, stripe=5)
    assert (await run_job(mine))["audit"].entries_checked == 6
    await audit_entries(1, start=6, stripe=3)
    await audit_entries(2, start=7, stripe=9)
    report = (await run_job(mine))["audit"]
    assert (report.ok, report.entries_checked, report.count) == (True, 3, 9)
    assert report.written is not None
    assert {h.stripe: h.count for h in report.written.stripes} == {3: 5, 5: 2, 9: 2}
    full = (await run_job(mine, full=True))["audit"]
    assert (full.ok, full.entries_checked) == (True, 9)


async def test_a_consent_merge_and_unmerge_across_two_stripes_keep_both_chains(
    vault: Vault, settings: Settings, tmp_path: Path
) -> None:
    await make_purpose("newsletter")
    survivor, merged = await consent_customers(vault, 2)
    await grant(vault, merged)
    async with in_transaction():
        await merging.merge(SYSTEM, survivor, merged)
        await merging.unmerge(SYSTEM, survivor, merged, datetime(2000, 1, 1, tzinfo=UTC))
    entries = list(await ConsentEntry.all().order_by("sequence"))
    assert {(e.customer_id, e.method, e.stripe) for e in entries} >= {
        (merged, Method.FORM, consent.stripe_of_customer(merged)),
        (survivor, Method.MERGE, consent.stripe_of_customer(survivor)),
    }
    assert all(e.stripe == consent.stripe_of_customer(e.customer_id) for e in entries)
    assert (await consent.verify_ledger()).ok
    assert (await ledgers.verify(ledgers.CONSENT, store_of(local(settings, tmp_path)))).ok


# ----------------------------------------------------------------------- documents


def test_a_checkpoint_before_striping_reads_as_the_head_of_stripe_0() -> None:
    keys = chain.Keyring("k1", {"k1": b"k" * 40})
    fields = {
        "format": 1, "ledger": "audit", "sequence": 9, "hash": "b" * 64, "count": 8,
        "key_id": "k1", "checkpointed_at": "2026-11-01T00:00:00+00:00", "previous": None,
        "previous_digest": None,
    }  # fmt: skip
    body = json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()
    document = json.dumps(
        {**fields, "mac_key_id": "k1", "mac": keys.mac(body)}, sort_keys=True
    ).encode()
    parsed = Checkpoint.parse(document, keys)
    assert parsed.stripes == (StripeHead(0, 9, "b" * 64, 8, "k1"),)
    assert (parsed.sequence, parsed.count) == (9, 8)


def test_a_checkpoint_is_positioned_at_its_newest_head() -> None:
    heads = (StripeHead(7, 40, "c" * 64, 3, "k1"), StripeHead(2, 41, "d" * 64, 5, None))
    made = heads_checkpoint("consent", heads, datetime(2026, 12, 1, tzinfo=UTC))
    assert (made.sequence, made.hash, made.key_id, made.count) == (41, "d" * 64, None, 8)
    assert [h.stripe for h in made.stripes] == [2, 7]
