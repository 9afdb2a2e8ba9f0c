"""The audit trail: same-transaction writes, hash chain, tamper detection, queries."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from tortoise.connection import get_connection
from tortoise.exceptions import OperationalError
from tortoise.transactions import in_transaction

from cdlm.audit import service as audit
from cdlm.audit.models import AuditEntry
from cdlm.auth.settings import AuthSettings
from cdlm.core import clock, stripes
from cdlm.core.chain import ChainProblem
from cdlm.core.principal import SYSTEM, Principal, PrincipalKind
from cdlm.core.roles import Role
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key
from tests.ledgers.support import target_in


@contextlib.asynccontextmanager
async def tampering(owner: asyncpg.Connection) -> AsyncIterator[asyncpg.Connection]:
    """What only the tables' owner could do: switch off the append-only trigger (the
    application role may not: tests/db/test_roles.py)."""
    await owner.execute("ALTER TABLE audit_entries DISABLE TRIGGER audit_entries_append_only")
    try:
        yield owner
    finally:
        await owner.execute("ALTER TABLE audit_entries ENABLE TRIGGER audit_entries_append_only")


def one_stripe(number: int) -> str:
    """A customer target numbered ``number`` in stripe 3: the tests below tamper with one
    chain (tests/ledgers/test_stripes.py tampers across stripes)."""
    return target_in(3, number, "customer")


ALICE = Principal(PrincipalKind.USER, uuid.uuid4(), Role.STEWARD, "Alice")
BOB = Principal(PrincipalKind.API_KEY, uuid.uuid4(), Role.INGEST, "Bob's key")


async def test_entries_chain_and_verify() -> None:
    for number in range(5):
        await audit.record(
            ALICE, "customer.update", target_type="customer", target_id=one_stripe(number)
        )
    report = await audit.verify_chain()
    assert report.ok
    assert report.entries_checked == 5
    entries = await AuditEntry.all().order_by("sequence")
    assert entries[0].prev_hash == audit.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(entries))
    assert report.head_hash == entries[-1].hash


async def test_entry_rolls_back_with_the_change_it_records() -> None:
    class Boom(Exception):
        pass

    async def change_that_fails() -> None:
        async with in_transaction():
            await audit.record(ALICE, "customer.update", target_type="customer", target_id="1")
            raise Boom

    with pytest.raises(Boom):
        await change_that_fails()
    assert await AuditEntry.all().count() == 0


async def test_entry_records_field_names_request_and_actor() -> None:
    entry = await audit.record(
        BOB,
        "customer.read",
        target_type="customer",
        target_id="c1",
        fields=["email", "email", "phone"],
    )
    stored = await AuditEntry.get(id=entry.id)
    assert stored.fields_touched == ["email", "phone"]
    assert stored.actor_kind == "api_key"
    assert stored.actor_id == BOB.id
    assert stored.actor_role == "ingest"


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("action", "'customer.delete'"),
        ("target_id", "'someone-else'"),
        ("fields_touched", "'[\"ssn\"]'::jsonb"),
        ("occurred_at", "occurred_at - interval '1 day'"),
    ],
)
async def test_altered_row_is_reported_as_the_first_broken_link(
    column: str, value: str, owner: asyncpg.Connection
) -> None:
    for number in range(4):
        await audit.record(
            ALICE, "customer.update", target_type="customer", target_id=one_stripe(number)
        )
    third = (await AuditEntry.all().order_by("sequence"))[2]
    async with tampering(owner) as connection:
        await connection.execute(
            f'UPDATE "audit_entries" SET "{column}" = {value} WHERE "sequence" = {third.sequence}'
        )
    report = await audit.verify_chain()
    assert not report.ok
    assert report.first_broken_sequence == third.sequence
    assert report.first_broken_id == third.id
    assert report.entries_checked == 2
    assert report.problem == ChainProblem.CONTENT_MISMATCH


async def test_deleted_row_breaks_the_next_link(owner: asyncpg.Connection) -> None:
    for number in range(4):
        await audit.record(
            ALICE, "customer.update", target_type="customer", target_id=one_stripe(number)
        )
    entries = await AuditEntry.all().order_by("sequence")
    async with tampering(owner) as connection:
        await connection.execute(
            f'DELETE FROM "audit_entries" WHERE "sequence" = {entries[1].sequence}'
        )
    report = await audit.verify_chain()
    assert report.first_broken_sequence == entries[2].sequence
    assert report.problem == ChainProblem.PREVIOUS_HASH_MISMATCH


async def test_rehashed_forgery_still_breaks_the_following_link(
    owner: asyncpg.Connection,
) -> None:
    for number in range(3):
        await audit.record(
            ALICE, "customer.update", target_type="customer", target_id=one_stripe(number)
        )
    entries = await AuditEntry.all().order_by("sequence")
    forged = entries[1]
    forged.action = "customer.delete"
    audit._sign(forged)  # even re-signed with the ledger key
    async with tampering(owner) as connection:
        await connection.execute(
            'UPDATE "audit_entries" SET "action" = $1, "hash" = $2 WHERE "sequence" = $3',
            forged.action,
            forged.hash,
            forged.sequence,
        )
    report = await audit.verify_chain()
    assert report.first_broken_sequence == entries[2].sequence


async def test_concurrent_writers_keep_one_intact_chain() -> None:
    await asyncio.gather(
        *(
            audit.record(ALICE if n % 2 else BOB, "customer.update", target_id=str(n))
            for n in range(40)
        )
    )
    report = await audit.verify_chain()
    assert report.ok
    assert report.entries_checked == 40


async def test_chain_spanning_several_verification_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stripes, "VERIFY_BATCH", 3)
    for number in range(10):
        await audit.record(SYSTEM, "job.run", target_type="job", target_id=target_in(3, number))
    assert (await audit.verify_chain()).entries_checked == 10


AUDIT_LOG = """
query($filter: AuditLogFilter, $first: Int, $after: String) {
  auditLog(filter: $filter, first: $first, after: $after) {
    nodes { sequence action actorKind actorId targetType targetId fields requestId }
    pageInfo { hasNextPage endCursor }
  }
}
"""


async def test_audit_log_filters_and_pages(gql: GraphQLClient, auth: AuthSettings) -> None:
    headers = bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))
    with clock.frozen_at(datetime(2026, 1, 1, tzinfo=UTC)):
        await audit.record(ALICE, "customer.update", target_type="customer", target_id="c1")
    await audit.record(BOB, "customer.ingest", target_type="customer", target_id="c2")
    await audit.record(
        ALICE, "customer.read", target_type="customer", target_id="c2", fields=["email"]
    )

    by_actor = await gql(
        AUDIT_LOG, {"filter": {"actorId": gid("StaffUser", ALICE.id)}}, headers=headers
    )
    assert [n["action"] for n in by_actor["data"]["auditLog"]["nodes"]] == [
        "customer.read",
        "customer.update",
    ]
    by_target = await gql(
        AUDIT_LOG, {"filter": {"targetType": "customer", "targetId": "c2"}}, headers=headers
    )
    assert {n["action"] for n in by_target["data"]["auditLog"]["nodes"]} == {
        "customer.ingest",
        "customer.read",
    }
    recent = await gql(
        AUDIT_LOG,
        {"filter": {"occurredFrom": (datetime.now(UTC) - timedelta(days=1)).isoformat()}},
        headers=headers,
    )
    assert "customer.update" not in {n["action"] for n in recent["data"]["auditLog"]["nodes"]}
    first = await gql(AUDIT_LOG, {"first": 2}, headers=headers)
    page = first["data"]["auditLog"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await gql(
        AUDIT_LOG, {"first": 5, "after": page["pageInfo"]["endCursor"]}, headers=headers
    )
    sequences = [n["sequence"] for n in page["nodes"] + rest["data"]["auditLog"]["nodes"]]
    assert sequences == sorted(sequences, reverse=True)
    assert len(sequences) == len(set(sequences))


async def test_mutations_through_the_api_are_audited_with_their_request_id(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    response = await gql.http.post(
        "/graphql",
        json={"query": 'mutation { createApiKey(input: {name: "n", role: AGENT}) { __typename } }'},
        headers=admin_headers,
    )
    entry = await AuditEntry.get(request_id=response.headers["x-request-id"])
    assert entry.action == "api_key.create"
    assert entry.actor_kind == "api_key"


async def test_verify_audit_chain_query_reports_tampering(
    gql: GraphQLClient, admin_headers: dict[str, str], owner: asyncpg.Connection
) -> None:
    for number in range(3):
        await audit.record(ALICE, "customer.update", target_id=str(number))
    query = (
        "{ verifyAuditChain { ok entriesChecked firstBrokenSequence firstBrokenId problem "
        "headHash } }"
    )
    healthy = (await gql(query, headers=admin_headers))["data"]["verifyAuditChain"]
    assert healthy["ok"] is True
    entries = await AuditEntry.all().order_by("sequence")
    async with tampering(owner) as connection:
        await connection.execute(
            f"UPDATE audit_entries SET actor_role = 'admin' WHERE sequence = {entries[-1].sequence}"
        )
    broken = (await gql(query, headers=admin_headers))["data"]["verifyAuditChain"]
    assert broken["ok"] is False
    assert broken["problem"] == "CONTENT_MISMATCH"
    assert broken["firstBrokenId"] == gid("AuditEntry", entries[-1].id)
    assert healthy["problem"] is None
    assert broken["firstBrokenSequence"] == entries[-1].sequence
    assert broken["entriesChecked"] == len(entries) - 1
    assert broken["headHash"] == entries[-2].hash
    assert healthy["headHash"] == entries[-1].hash


@pytest.mark.parametrize(
    "statement",
    ["UPDATE audit_entries SET action = 'x'", "DELETE FROM audit_entries"],
)
async def test_the_database_refuses_to_change_or_delete_entries(
    statement: str, owner: asyncpg.Connection
) -> None:
    await audit.record(ALICE, "customer.update", target_id="1")
    with pytest.raises(OperationalError, match="permission denied for table audit_entries"):
        await get_connection("default").execute_script(statement)  # the application role
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await owner.execute(statement)  # the owner: the trigger still guards the table
    assert (await audit.verify_chain()).ok


async def test_record_many_chains_one_entry_per_target() -> None:
    await audit.record(BOB, "customer.ingest", target_id="c0")
    entries = await audit.record_many(
        ALICE,
        "customer.read",
        target_type="customer",
        target_ids=["c1", "c2", "c3"],
        fields=["email"],
    )
    assert [e.target_id for e in entries] == ["c1", "c2", "c3"]
    report = await audit.verify_chain()
    assert report.ok
    assert report.entries_checked == 4
    assert (
        await audit.record_many(ALICE, "customer.read", target_type="customer", target_ids=[]) == []
    )
