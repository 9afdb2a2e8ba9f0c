"""Read audit without the chain's lock: ``record_read`` writes one pending record per request,
the sequencer chains pending records in arrival order, and verification reports them."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from tortoise.connection import get_connection
from tortoise.exceptions import OperationalError
from tortoise.transactions import in_transaction

from cdlm.audit import sequencer
from cdlm.audit import service as audit
from cdlm.audit.models import AuditEntry, AuditPending
from cdlm.core import chain, clock
from cdlm.core.chain import ChainProblem
from cdlm.core.logs import request_id_var
from cdlm.core.principal import Principal, PrincipalKind
from cdlm.core.roles import Role
from cdlm.core.stripes import STRIPES
from tests.audit.test_audit import tampering
from tests.conftest import GraphQLClient
from tests.factories import gid
from tests.ledgers.support import target_in
from tests.support.sql_counter import StatementRecorder

AGENT = Principal(PrincipalKind.USER, uuid.uuid4(), Role.AGENT, "Agnes")
STEWARD = Principal(PrincipalKind.USER, uuid.uuid4(), Role.STEWARD, "Stan")


def customers(count: int) -> list[uuid.UUID]:
    return [uuid.uuid4() for _ in range(count)]


async def pending_count() -> int:
    return await AuditPending.all().count()


@contextlib.asynccontextmanager
async def audit_lock_held(
    stripes: Sequence[int] = tuple(range(STRIPES)), *, inbox: bool = True
) -> AsyncIterator[None]:
    """Other transactions hold audit locks until the block ends: these stripes' (as slow
    writers would: every stripe by default) and, with ``inbox``, the sequencer's (as another
    sequencer would)."""
    locked, release = asyncio.Event(), asyncio.Event()
    keys = [audit.LEDGER.lock_key(stripe) for stripe in stripes]
    if inbox:
        keys.append(sequencer.INBOX_LOCK_KEY)

    async def hold() -> None:
        async with in_transaction():
            await get_connection("default").execute_query(
                "SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k", [keys]
            )
            locked.set()
            await release.wait()

    holder = asyncio.create_task(hold())
    await locked.wait()
    try:
        yield
    finally:
        release.set()
        await holder


# ------------------------------------------------------------------ recording a read


async def test_a_read_is_one_pending_record_until_the_sequencer_chains_it() -> None:
    read = customers(3)
    token = request_id_var.set("req-1")
    try:
        record_id = await audit.record_read(AGENT, read, ["email", "phone", "email"])
    finally:
        request_id_var.reset(token)
    assert record_id is not None
    assert await AuditEntry.all().count() == 0
    (pending,) = await AuditPending.all()
    assert pending.id == record_id
    assert sorted(pending.subject_ids) == sorted(read)
    assert pending.fields_touched == ["email", "phone"]
    assert (pending.actor_kind, pending.actor_id, pending.actor_role) == ("user", AGENT.id, "agent")
    assert (pending.action, pending.request_id) == ("customer.read", "req-1")

    assert await sequencer.chain_pending() == 1
    assert await pending_count() == 0
    entry = await AuditEntry.get(id=record_id)
    assert sorted(entry.subject_ids or []) == sorted(read)
    assert (entry.action, entry.target_type, entry.target_id) == ("customer.read", "customer", None)
    assert (entry.fields_touched, entry.request_id) == (["email", "phone"], "req-1")
    assert entry.occurred_at == pending.occurred_at
    assert entry.prev_hash == audit.GENESIS_HASH
    report = await audit.verify_chain()
    assert (report.ok, report.entries_checked, report.pending) == (True, 1, 0)
    assert report.head_hash == entry.hash


async def test_record_read_is_one_insert_without_the_lock_or_the_head(
    sql: StatementRecorder,
) -> None:
    with sql.recording():
        await audit.record_read(AGENT, customers(50), ["email"])
    (statement,) = sql.statements
    assert statement.startswith('INSERT INTO "audit_pending"')
    assert "advisory" not in statement
    assert "audit_entries" not in statement


async def test_action_and_request_id_can_be_given() -> None:
    token = request_id_var.set("the-request")
    try:
        await audit.record_read(AGENT, customers(1), ["consents"], action="consent.read")
        await audit.record_read(AGENT, customers(1), [], request_id="given")
    finally:
        request_id_var.reset(token)
    rows = await AuditPending.all().order_by("arrival")
    assert [(r.action, r.request_id, r.fields_touched) for r in rows] == [
        ("consent.read", "the-request", ["consents"]),
        ("customer.read", "given", []),
    ]


async def test_reading_nobody_writes_nothing(sql: StatementRecorder) -> None:
    with sql.recording():
        assert await audit.record_read(AGENT, [], ["email"]) is None
    assert sql.count == 0
    assert await pending_count() == 0


async def test_a_read_in_a_transaction_that_rolls_back_is_not_recorded() -> None:
    class Boom(Exception):
        pass

    async def read_then_fail() -> None:
        async with in_transaction():
            await audit.record_read(AGENT, customers(2), ["email"])
            raise Boom

    with pytest.raises(Boom):
        await read_then_fail()
    assert await pending_count() == 0


# ------------------------------------------------------------------ no waiting on the lock


async def test_concurrent_reads_do_not_wait_for_the_audit_locks() -> None:
    read = customers(20)
    async with audit_lock_held():
        # A write waits for its stripe; a sequencer that may not wait gives up at once.
        write = asyncio.create_task(
            audit.record(STEWARD, "customer.update", target_type="customer", target_id="c1")
        )
        assert await sequencer.try_chain_pending() is None
        # Twenty reads on as many pool connections as there are, all while the locks are held:
        # if one waited for a lock this would never finish (the locks are released after it).
        async with asyncio.timeout(30):
            ids = await asyncio.gather(
                *(audit.record_read(AGENT, [customer], ["email"]) for customer in read)
            )
        assert not write.done()
        assert await pending_count() == 20
        assert await AuditEntry.all().count() == 0
    written = await write
    # The write chained only itself: the reads are the sequencer's to chain.
    assert [e.id for e in await AuditEntry.all()] == [written.id]
    assert await pending_count() == 20
    assert await sequencer.chain_all() == 20
    chained = await AuditEntry.filter(subject_ids__isnull=False).order_by("sequence")
    assert {e.id for e in chained} == set(ids)
    assert await pending_count() == 0
    assert (await audit.verify_chain()).ok


async def test_the_sequencer_waits_for_another_sequencer_and_then_chains() -> None:
    await audit.record_read(AGENT, customers(1), ["email"])
    async with audit_lock_held([], inbox=True):
        waiting = asyncio.create_task(sequencer.chain_pending())
        await asyncio.sleep(0.05)
        assert not waiting.done()
    assert await waiting == 1


async def test_the_sequencer_chains_into_a_stripe_no_writer_holds() -> None:
    recorded = [await audit.record_read(AGENT, customers(1), ["email"]) for _ in range(3)]
    free = 11
    async with audit_lock_held([s for s in range(STRIPES) if s != free], inbox=False):
        # Writers hold every other stripe: the sequencer does not queue behind them.
        async with asyncio.timeout(30):
            assert await sequencer.chain_pending() == 3
    chained = await AuditEntry.all().order_by("sequence")
    assert [(e.id, e.stripe) for e in chained] == [(r, free) for r in recorded]
    assert (await audit.verify_chain()).ok


async def test_the_sequencer_that_may_not_wait_gives_up_when_every_stripe_is_held() -> None:
    await audit.record_read(AGENT, customers(1), ["email"])
    async with audit_lock_held(inbox=False):
        assert await sequencer.try_chain_pending() is None
    assert await sequencer.try_chain_pending() == 1


# ------------------------------------------------------------------ order and atomicity


async def test_writes_leave_reads_to_the_sequencer_which_chains_them_in_arrival_order() -> None:
    await audit.record_read(AGENT, customers(1), ["email"], action="read.1")
    await audit.record(STEWARD, "write.1", target_type="customer", target_id="c1")
    await audit.record_read(AGENT, customers(2), ["email"], action="read.2")
    await audit.record_read(AGENT, customers(1), ["phone"], action="read.3")
    await audit.record_many(
        STEWARD, "write.2", target_type="customer", target_ids=["c2", "c3"], fields=["email"]
    )
    await audit.record_read(AGENT, customers(1), ["email"], action="read.4")
    # A write no longer chains the reads pending before it (it would race the sequencer on
    # the inbox): the writes are chained, the four reads wait.
    assert await pending_count() == 4
    assert [e.action for e in await AuditEntry.all().order_by("sequence")] == [
        "write.1",
        "write.2",
        "write.2",
    ]
    assert await sequencer.chain_pending() == 4
    reads = await AuditEntry.filter(action__startswith="read.").order_by("sequence")
    assert [e.action for e in reads] == ["read.1", "read.2", "read.3", "read.4"]
    assert len({e.stripe for e in reads}) == 1  # one batch, one stripe, in arrival order
    # Every entry keeps the time it happened: the order of events is the order of occurred_at.
    everything = await AuditEntry.all().order_by("occurred_at", "sequence")
    assert [e.action for e in everything] == [
        "read.1",
        "write.1",
        "read.2",
        "read.3",
        "write.2",
        "write.2",
        "read.4",
    ]
    report = await audit.verify_chain()
    assert (report.ok, report.entries_checked, report.pending) == (True, 7, 0)


async def test_pending_records_are_chained_in_arrival_order_in_batches() -> None:
    recorded = [await audit.record_read(AGENT, customers(1), ["email"]) for _ in range(7)]
    assert await sequencer.chain_pending(max_entries=3) == 3
    assert await sequencer.chain_all(max_entries=3) == 4
    assert [e.id for e in await AuditEntry.all().order_by("sequence")] == recorded
    assert (await audit.verify_chain()).entries_checked == 7


async def test_a_failed_chaining_loses_and_duplicates_nothing() -> None:
    class Crash(Exception):
        pass

    async def chain_then_crash() -> None:
        async with in_transaction():
            locked = await audit.LEDGER.try_lock_any([0])
            assert locked is not None
            _, chained = await audit.chain_pending_locked(*locked, 10)
            assert chained == 1
            raise Crash  # the process dies before the commit

    record_id = await audit.record_read(AGENT, customers(3), ["email"])
    with pytest.raises(Crash):
        await chain_then_crash()
    assert await AuditEntry.all().count() == 0
    assert [p.id for p in await AuditPending.all()] == [record_id]
    assert await sequencer.chain_pending() == 1
    assert await sequencer.chain_pending() == 0
    assert [e.id for e in await AuditEntry.all()] == [record_id]
    assert (await audit.verify_chain()).ok


async def test_concurrent_sequencers_chain_each_record_once() -> None:
    recorded = await asyncio.gather(
        *(audit.record_read(AGENT, customers(2), ["email"]) for _ in range(30))
    )
    counts = await asyncio.gather(*(sequencer.chain_all(max_entries=4) for _ in range(5)))
    assert sum(counts) == 30
    chained = [e.id for e in await AuditEntry.all().order_by("sequence")]
    assert sorted(chained) == sorted(recorded)
    assert await pending_count() == 0
    assert (await audit.verify_chain()).ok


async def test_nothing_pending_chains_nothing() -> None:
    assert await sequencer.chain_pending() == 0
    assert await sequencer.try_chain_pending() == 0
    assert await sequencer.chain_all() == 0
    assert await AuditEntry.all().count() == 0


# ------------------------------------------------------------------ whose data was read


async def test_a_record_covering_50_customers_is_found_by_each_of_them() -> None:
    read = customers(50)
    bystander = uuid.uuid4()
    await audit.record(STEWARD, "customer.update", target_type="customer", target_id=read[7])
    record_id = await audit.record_read(AGENT, read, ["email"])

    for customer in read:
        found = await audit.about_subject([customer], [])
        assert found[-1].id == record_id
        assert found[-1].sequence is None  # still pending
    assert [e.action for e in await audit.about_subject([read[7]], [])] == [
        "customer.update",
        "customer.read",
    ]
    assert await audit.about_subject([bystander], []) == []

    await sequencer.chain_pending()
    for customer in read:
        (entry,) = [e for e in await audit.about_subject([customer], []) if e.id == record_id]
        assert entry.sequence is not None
        assert entry.action == "customer.read"
    # Asked about several profiles at once (merged ones), the record comes once.
    assert [e.id for e in await audit.about_subject(read[:5], [])] == [record_id]
    assert await audit.about_subject([bystander], []) == []


async def test_reads_of_requests_are_found_by_the_request_not_as_customers() -> None:
    request, customer = uuid.uuid4(), uuid.uuid4()
    record_id = await audit.record_read(
        AGENT, [request], ["subject"], action="dsr.read", target_type="data_subject_request"
    )
    await audit.record_read(AGENT, [customer], ["email"])
    assert [e.id for e in await audit.about_subject([], [request])] == [record_id]
    assert await audit.about_subject([request], []) == []  # not a customer
    await sequencer.chain_pending()
    (entry,) = await audit.about_subject([], [request])
    assert (entry.id, entry.action, entry.target_type) == (
        record_id,
        "dsr.read",
        "data_subject_request",
    )
    assert entry.subject_ids == [request]
    assert [e.action for e in await audit.about_subject([customer], [request])] == [
        "dsr.read",
        "customer.read",
    ]


async def test_a_record_chained_between_the_two_lookups_is_found_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    customer = uuid.uuid4()
    record_id = await audit.record_read(AGENT, [customer], ["email"])

    class InboxThenSequencer:
        """The inbox as about_subject reads it, with the sequencer running right after."""

        all = AuditPending.all  # the sequencer's own reads are left alone

        @staticmethod
        def filter(*args: Any, **criteria: Any) -> Any:
            class Query:
                async def _read_then_chain(self, *order: str) -> list[AuditPending]:
                    rows = list(await AuditPending.filter(*args, **criteria).order_by(*order))
                    assert await sequencer.chain_pending() == 1
                    return rows

                def order_by(self, *order: str) -> Any:
                    return self._read_then_chain(*order)

            return Query()

    monkeypatch.setattr(audit, "AuditPending", InboxThenSequencer)
    found = await audit.about_subject([customer], [])
    assert [e.id for e in found] == [record_id]
    assert found[0].sequence is not None


async def _plan(table: str) -> str:
    async with in_transaction() as connection:
        await connection.execute_script("SET LOCAL enable_seqscan = off")
        rows = await connection.execute_query_dict(
            f'EXPLAIN SELECT 1 FROM "{table}" WHERE "subject_ids" && $1::uuid[]',
            [[uuid.uuid4()]],
        )
    return " ".join(str(value) for row in rows for value in row.values())


async def test_subject_lookups_can_use_the_gin_indexes() -> None:
    assert "idx_audit_entries_subject_ids" in await _plan("audit_entries")
    assert "idx_audit_pending_subject_ids" in await _plan("audit_pending")


# ------------------------------------------------------------------ verification


async def test_verification_reports_pending_records_as_pending_not_broken() -> None:
    start = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
    await audit.record(STEWARD, "customer.update", target_type="customer", target_id="c1")
    with clock.frozen_at(start):
        await audit.record_read(AGENT, customers(2), ["email"])
    with clock.frozen_at(start + timedelta(seconds=1)):
        await audit.record_read(AGENT, customers(1), ["phone"])
    with clock.frozen_at(start + timedelta(seconds=3)):
        report = await audit.verify_chain()
    assert report.ok
    assert report.entries_checked == 1
    assert report.first_broken_sequence is None
    assert report.problem is None
    assert report.pending == 2
    assert report.oldest_pending_age == timedelta(seconds=3)

    assert await sequencer.chain_pending() == 2
    after = await audit.verify_chain()
    assert (after.ok, after.entries_checked, after.pending, after.oldest_pending_age) == (
        True,
        3,
        0,
        None,
    )


async def test_tampering_with_whom_a_read_covered_is_detected(owner: asyncpg.Connection) -> None:
    read = customers(3)
    await audit.record_read(AGENT, read, ["email"])
    await audit.record(STEWARD, "customer.update", target_type="customer", target_id="c1")
    first = (await AuditEntry.all().order_by("sequence"))[0]
    async with tampering(owner) as connection:
        await connection.execute(
            'UPDATE "audit_entries" SET "subject_ids" = $1::uuid[] WHERE "sequence" = $2',
            read[:2],
            first.sequence,
        )
    report = await audit.verify_chain()
    assert not report.ok
    assert report.first_broken_sequence == first.sequence
    assert report.problem == ChainProblem.CONTENT_MISMATCH


async def test_entries_without_subjects_hash_as_they_always_have() -> None:
    # In stripe 0 (where every entry from before striping is) nothing else is covered.
    target = target_in(0, "c", "customer")
    entry = await audit.record(STEWARD, "customer.update", target_type="customer", target_id=target)
    stored = await AuditEntry.get(id=entry.id)
    assert (stored.subject_ids, stored.stripe) == (None, 0)
    before = {
        "id": str(entry.id),
        "occurred_at": entry.occurred_at.isoformat(),
        "actor_kind": "user",
        "actor_id": str(STEWARD.id),
        "actor_role": "steward",
        "action": "customer.update",
        "target_type": "customer",
        "target_id": target,
        "fields": [],
        "request_id": None,
    }
    assert stored.key_id == chain.keyring().current
    assert stored.hash == chain.keyring().keyed_hash(before, audit.GENESIS_HASH, stored.key_id)
    # An entry of another stripe covers its stripe too.
    other = await audit.record(
        STEWARD, "customer.update", target_type="customer", target_id=target_in(2, "d", "customer")
    )
    assert other.stripe == 2
    content = {**audit.content_of(other)}
    assert other.hash == chain.keyring().keyed_hash(content, audit.GENESIS_HASH, other.key_id)
    assert content.pop("stripe") == 2
    assert other.hash != chain.keyring().keyed_hash(content, audit.GENESIS_HASH, other.key_id)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_pending SET action = 'x'",
        "DELETE FROM audit_pending",
        "TRUNCATE audit_pending",
    ],
)
async def test_the_inbox_refuses_changes_and_removal_of_unchained_records(
    statement: str, owner: asyncpg.Connection
) -> None:
    await audit.record_read(AGENT, customers(1), ["email"])
    # The application role may delete chained records only (the trigger) and may neither
    # update nor truncate (no privilege); the owner is refused by the triggers.
    refused = "audit_pending is" if statement.startswith("DELETE") else "permission denied"
    with pytest.raises(OperationalError, match=refused):
        await get_connection("default").execute_script(statement)
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="audit_pending is"):
        await owner.execute(statement)
    assert await pending_count() == 1
    assert await sequencer.chain_pending() == 1


# ------------------------------------------------------------------ through the API

VERIFY = "{ verifyAuditChain { ok entriesChecked pendingEntries oldestPendingSeconds } }"
LOG = """
query($filter: AuditLogFilter) {
  auditLog(filter: $filter) { nodes { action targetType targetId subjectIds } }
}
"""


async def test_the_api_reports_pending_records_and_finds_reads_by_customer(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    read = customers(3)
    await audit.record_read(AGENT, read, ["email"])
    pending = (await gql(VERIFY, headers=admin_headers))["data"]["verifyAuditChain"]
    assert pending["ok"] is True
    assert pending["pendingEntries"] == 1
    assert pending["oldestPendingSeconds"] >= 0

    await sequencer.chain_pending()
    chained = (await gql(VERIFY, headers=admin_headers))["data"]["verifyAuditChain"]
    assert chained["entriesChecked"] == pending["entriesChecked"] + 1
    assert chained["pendingEntries"] == 0
    assert chained["oldestPendingSeconds"] is None
    by_customer = await gql(
        LOG,
        {"filter": {"targetType": "customer", "targetId": gid("Customer", read[1])}},
        headers=admin_headers,
    )
    (node,) = by_customer["data"]["auditLog"]["nodes"]
    assert node["action"] == "customer.read"
    assert node["targetId"] is None
    assert sorted(node["subjectIds"]) == sorted(gid("Customer", c) for c in read)
    other = await gql(
        LOG, {"filter": {"targetId": gid("Customer", uuid.uuid4())}}, headers=admin_headers
    )
    assert other["data"]["auditLog"]["nodes"] == []
