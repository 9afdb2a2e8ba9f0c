"""The read replica (``CDLM_DATABASE_READ_URL``, :mod:`cdlm.db.reads`) on real PostgreSQL.

The replica here is a second pool to the session database as the app role, as cdlm opens it:
read-only sessions named ``cdlm-read``. Every statement is recorded with the
``application_name`` of the session that ran it, so each test sees where each read went; a write
sent to the replica fails because its sessions are read-only.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from tortoise.connection import get_connection
from tortoise.context import TortoiseContext
from tortoise.exceptions import TransactionManagementError
from tortoise.transactions import in_transaction

from cdlm.auth.settings import AuthSettings
from cdlm.config import ConfigError, DatabaseTarget, Settings, load_settings
from cdlm.consent import service as consent
from cdlm.core.roles import Role
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.models import Customer
from cdlm.db.orm_config import tortoise_config
from cdlm.db.reads import (
    REPLICA_APPLICATION_NAME,
    close_replica,
    open_replica,
    primary_reads,
    read_connection,
    replica_reads,
)
from cdlm.vault.service import Vault
from tests.conftest import TEST_APPS, GraphQLClient
from tests.factories import bearer, make_api_key, make_customer
from tests.support.lambda_invoke import LambdaContainer, database_url, http_api_v2_event
from tests.support.sql_counter import CountingConnection

PRIMARY_NAME = "cdlm"
_log: list[list[tuple[str, str]]] = []


class WhereConnection(CountingConnection):
    """Records ``(application_name, statement)`` for every statement while a log is open."""

    def _record(self, query: Any) -> None:
        name = str(self.get_settings().application_name)
        for log in _log:
            log.append((name, str(query)))


@contextmanager
def where() -> Iterator[list[tuple[str, str]]]:
    log: list[tuple[str, str]] = []
    _log.append(log)
    try:
        yield log
    finally:
        _log.remove(log)


def _sessions(log: list[tuple[str, str]], needle: str) -> set[str]:
    return {name for name, statement in log if needle in statement}


@pytest.fixture
async def with_replica(database: DatabaseTarget) -> AsyncIterator[None]:
    """The ORM as ``init_orm`` opens it with ``CDLM_DATABASE_READ_URL`` set (for this test)."""
    config = tortoise_config(database, extra_apps=TEST_APPS, connection_class=WhereConnection)
    async with TortoiseContext() as context:
        await context.init(config=config)
        await open_replica(database, pool_max=2, connection_class=WhereConnection)
        try:
            yield
        finally:
            await close_replica()


# --- settings -----------------------------------------------------------------------------

PRIMARY_URL = "postgresql://cdlm_app:pw@db.internal/cdlm"


@pytest.mark.pure
def test_the_replica_url_is_optional_and_parsed_like_the_primary() -> None:
    assert load_settings({"DATABASE_URL": PRIMARY_URL}).database_read is None
    read = load_settings(
        {
            "DATABASE_URL": PRIMARY_URL,
            "CDLM_DATABASE_READ_URL": "postgresql://cdlm_app:pw@db-ro.internal:6432/cdlm"
            "?sslmode=require",
        }
    ).database_read
    assert read == DatabaseTarget("db-ro.internal", 6432, "cdlm_app", "pw", "cdlm", "require")


@pytest.mark.pure
@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        ({"CDLM_DATABASE_READ_URL": PRIMARY_URL}, "needs DATABASE_URL (the primary)"),
        (
            {"DATABASE_URL": PRIMARY_URL, "CDLM_DATABASE_READ_URL": "mysql://cdlm_app@db-ro/cdlm"},
            "must start with postgresql:// (cdlm runs on PostgreSQL only)",
        ),
        (
            {"DATABASE_URL": PRIMARY_URL, "CDLM_DATABASE_READ_URL": "postgresql://cdlm_app@/cdlm"},
            "names no host (add @host or ?host=/socket/dir)",
        ),
        (
            {
                "DATABASE_URL": PRIMARY_URL,
                "CDLM_DATABASE_READ_URL": "postgresql://owner:pw@db-ro/cdlm",
            },
            "must connect as DATABASE_URL's role",
        ),
        (
            {
                "DATABASE_URL": PRIMARY_URL,
                "CDLM_DATABASE_READ_URL": "postgresql://cdlm_app:pw@db-ro/other",
            },
            "must name the database DATABASE_URL names",
        ),
    ],
)
def test_a_bad_replica_url_names_the_variable_and_the_problem(
    environ: dict[str, str], problem: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(environ)
    assert refused.value.variable == "CDLM_DATABASE_READ_URL"
    assert refused.value.problem == problem
    assert "pw" not in str(refused.value)


# --- routing ------------------------------------------------------------------------------

_SESSION = "SELECT current_setting('application_name') AS name, "
_SESSION += "current_setting('transaction_read_only') AS read_only"


async def _session() -> tuple[str, str]:
    (row,) = await read_connection().execute_query_dict(_SESSION)
    return row["name"], row["read_only"]


async def test_routed_reads_run_on_the_read_only_replica_and_others_on_the_primary(
    with_replica: None,
) -> None:
    assert await _session() == (PRIMARY_NAME, "off")
    assert await replica_reads(_session)() == (REPLICA_APPLICATION_NAME, "on")


async def test_a_write_sent_to_the_replica_fails(with_replica: None) -> None:
    async def write() -> None:
        await read_connection().execute_query(
            "INSERT INTO import_runs (id, file_digest, file_name, source_system, started_at, "
            "last_line, created, matched, rejected) VALUES ($1, 'x', 'x', 'x', now(), 0, 0, 0, 0)",
            [str(uuid.uuid4())],
        )

    with pytest.raises(TransactionManagementError, match="read-only transaction"):
        await replica_reads(write)()
    await write()  # the same statement, unrouted, reaches the primary
    assert await get_connection("default").execute_query_dict(
        "SELECT file_name FROM import_runs"
    ) == [{"file_name": "x"}]


async def test_querysets_read_the_replica_and_writes_in_the_scope_stay_on_the_primary(
    with_replica: None, vault: Vault
) -> None:
    made = await make_customer(vault, given_name="Ada", email="ada@example.com")

    @replica_reads
    async def touch() -> int:
        found = await Customer.filter(id=made.customer_id).using_db(read_connection()).count()
        await Customer.filter(id=made.customer_id).update(quality_score=0.5)
        return found

    with where() as log:
        assert await touch() == 1
    assert _sessions(log, "SELECT COUNT") == {REPLICA_APPLICATION_NAME}
    assert _sessions(log, "UPDATE") == {PRIMARY_NAME}
    assert (await Customer.get(id=made.customer_id)).quality_score == 0.5


async def test_reads_inside_a_transaction_stay_on_the_primary(
    with_replica: None, vault: Vault
) -> None:
    made = await make_customer(vault, given_name="Ada", email="ada@example.com")

    @replica_reads
    async def in_one_transaction() -> tuple[int, tuple[str, str]]:
        async with in_transaction():
            await Customer.filter(id=made.customer_id).update(quality_score=0.25)
            # Its own write is visible: the read is on the transaction's connection.
            seen = (
                await Customer.filter(id=made.customer_id, quality_score=0.25)
                .using_db(read_connection())
                .count()
            )
            return seen, await _session()

    with where() as log:
        seen, session = await in_one_transaction()
    assert (seen, session) == (1, (PRIMARY_NAME, "off"))
    assert _sessions(log, "SELECT COUNT") == {PRIMARY_NAME}


async def test_consent_decisions_read_the_primary_even_inside_a_replica_scope(
    with_replica: None, vault: Vault
) -> None:
    made = await make_customer(vault, given_name="Ada", email="ada@example.com")

    @replica_reads
    async def decide() -> bool:
        return await consent.may_process(made.customer_id, "newsletter")

    with where() as log:
        assert await decide() is False  # no such purpose: refused
    assert log
    assert {name for name, _ in log} == {PRIMARY_NAME}
    assert await replica_reads(primary_reads(_session))() == (PRIMARY_NAME, "off")


async def test_without_a_replica_routed_reads_use_the_primary() -> None:
    assert await replica_reads(_session)() == (PRIMARY_NAME, "off")


# --- through the API ----------------------------------------------------------------------

LIST = """
query { customers(first: 10) { nodes { id profile { givenName } } } }
"""
FUNNEL = """
query ($input: FunnelInput!) {
  funnel(input: $input) { __typename ... on Funnel { steps { eventType customers } } }
}
"""


async def test_the_customer_list_pages_on_the_replica_and_reads_values_on_the_primary(
    with_replica: None, gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    names = {"Ada", "Grace", "Edsger"}
    for name in names:
        await make_customer(vault, given_name=name, email=f"{name.lower()}@example.com")
    headers = bearer(await make_api_key(auth, Role.ADMIN))
    await gql("{ viewer { role } }", headers=headers)  # records the key's last use once
    with where() as log:
        answer = await gql(LIST, headers=headers)
    assert "errors" not in answer, answer["errors"]
    page = answer["data"]["customers"]
    assert {node["profile"]["givenName"] for node in page["nodes"]} == names
    replica = [statement for name, statement in log if name == REPLICA_APPLICATION_NAME]
    # The page's keys: one statement on the replica, nothing else.
    assert len(replica) == 1
    assert all('FROM "customers"' in statement for statement in replica)
    assert all(statement.lstrip().upper().startswith("SELECT") for statement in replica)
    # The personal values are read (and their reading audited) on the primary: an erasure
    # is never undone by the replica's delay.
    assert _sessions(log, "customer_keys") <= {PRIMARY_NAME}
    assert _sessions(log, "INSERT") == {PRIMARY_NAME}


async def test_funnels_read_the_replica(
    with_replica: None, gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    made = await make_customer(vault, given_name="Ada", email="ada@example.com")
    await store_events(
        vault,
        [
            EventIngest(
                type=kind,
                occurred_at=start + timedelta(hours=hours),
                source_system="web",
                customer_id=made.customer_id,
            )
            for kind, hours in (("page.viewed", 1), ("purchase", 2))
        ],
    )
    headers = bearer(await make_api_key(auth, Role.ANALYST))
    variables = {
        "input": {
            "steps": ["page.viewed", "purchase"],
            "within": "P7D",
            "from": start.isoformat(),
            "to": (start + timedelta(days=30)).isoformat(),
        }
    }
    with where() as log:
        answer = await gql(FUNNEL, variables, headers=headers)
    steps = answer["data"]["funnel"]["steps"]
    assert [(s["eventType"], s["customers"]) for s in steps] == [
        ("page.viewed", 1),
        ("purchase", 1),
    ]
    assert _sessions(log, '"events"') | _sessions(log, " events ") == {REPLICA_APPLICATION_NAME}


# --- wiring: the Lambda handler opens the replica from its settings -----------------------


async def test_the_lambda_handler_reads_lists_from_the_replica_url(
    database: DatabaseTarget,
    settings: Settings,
    vault: Vault,
    auth: AuthSettings,
    owner: asyncpg.Connection,
) -> None:
    for name in ("Ada", "Grace"):
        await make_customer(vault, given_name=name, email=f"{name.lower()}@example.com")
    headers = bearer(await make_api_key(auth, Role.ADMIN))
    url = database_url(database)
    container = LambdaContainer(
        database,
        {
            "CDLM_DATABASE_READ_URL": url,
            "CDLM_MASTER_KEY_FILE": str(settings.master_key_file),
        },
    )
    try:
        response, _ = container.invoke(http_api_v2_event({"query": LIST}, headers=headers))
        body = json.loads(response["body"])
        assert "errors" not in body, body
        assert {n["profile"]["givenName"] for n in body["data"]["customers"]["nodes"]} == {
            "Ada",
            "Grace",
        }
        sessions = await owner.fetch(
            "SELECT application_name, backend_type FROM pg_stat_activity "
            "WHERE datname = current_database() AND usename = $1",
            database.user,
        )
        names = {row["application_name"] for row in sessions}
        assert {REPLICA_APPLICATION_NAME, PRIMARY_NAME} <= names
    finally:
        container.close()
