"""Events partitioned by month, on real PostgreSQL: months made ahead and on demand, keys unique
across every month (also under concurrent ingestion), and what the application role may do."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime

import asyncpg
import pytest
from tortoise.connection import get_connection
from tortoise.exceptions import OperationalError
from tortoise.transactions import in_transaction

from cdlm.config import DatabaseTarget
from cdlm.core.principal import SYSTEM
from cdlm.customers import partitions
from cdlm.customers.disposal import anonymize_events
from cdlm.customers.events import EventIngest, ingest_events, store_events
from cdlm.customers.models import Customer, Event, EventKey
from cdlm.db.lifecycle import connect
from cdlm.jobs import event_partitions
from cdlm.vault.service import Vault
from tests.factories import make_customer


async def partition_names(connection: asyncpg.Connection) -> set[str]:
    rows = await connection.fetch(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'public.events'::regclass"
    )
    return {row["relname"] for row in rows}


@pytest.fixture
async def months_made(owner: asyncpg.Connection) -> AsyncIterator[None]:
    """Months a test makes are dropped after it (other tests expect the usual months)."""
    before = await partition_names(owner)
    yield
    for name in await partition_names(owner) - before:
        await owner.execute(f'DROP TABLE "{name}"')


def event(customer_id: uuid.UUID, at: datetime, external_id: str | None = None) -> EventIngest:
    return EventIngest(
        type="purchase",
        occurred_at=at,
        source_system="shop",
        customer_id=customer_id,
        external_id=external_id,
    )


async def customer(vault: Vault, email: str = "ada@example.com") -> uuid.UUID:
    return (await make_customer(vault, email=email, given_name="Ada")).customer_id


async def where_is(event_id: uuid.UUID) -> str:
    rows = await get_connection("default").execute_query_dict(
        "SELECT tableoid::regclass::text AS home FROM events WHERE id = $1", [event_id]
    )
    return str(rows[0]["home"])


async def keys() -> dict[str, uuid.UUID]:
    return {k.external_id: k.event_id for k in await EventKey.all()}


# --------------------------------------------------------------------------- making months


@pytest.mark.usefixtures("months_made")
async def test_the_job_makes_months_ahead_once_whatever_runs_it() -> None:
    now = datetime(2041, 11, 20, 8, tzinfo=UTC)
    first = await event_partitions.run(months_ahead=2, now=now)
    assert first.made == ["events_2041_11", "events_2041_12", "events_2042_01"]
    assert {"events_2041_11", "events_2042_01"} <= {m.name for m in await partitions.months()}
    again = await event_partitions.run(months_ahead=2, now=now)
    assert again.made == []
    assert set(first.made) <= set(again.existing)
    # Two at once (two workers, or the worker and Lambda): each month is made once.
    later = datetime(2042, 1, 5, tzinfo=UTC)
    one, two = await asyncio.gather(
        event_partitions.run(months_ahead=3, now=later),
        event_partitions.run(months_ahead=3, now=later),
    )
    assert sorted(one.made + two.made) == ["events_2042_02", "events_2042_03", "events_2042_04"]
    bounds = await get_connection("default").execute_query_dict(
        "SELECT pg_get_expr(c.relpartbound, c.oid) AS bound FROM pg_class c "
        "WHERE c.relname = 'events_2042_02'"
    )
    # UTC months whatever the session's time zone (the test server's is UTC: say it in text).
    assert "2042-02-01 00:00:00+00" in bounds[0]["bound"]
    assert "2042-03-01 00:00:00+00" in bounds[0]["bound"]


async def test_the_job_refuses_a_silly_horizon() -> None:
    with pytest.raises(ValueError, match="months_ahead is 0 to 120"):
        await event_partitions.run(months_ahead=121)
    with pytest.raises(ValueError, match="months_ahead is 0 to 120"):
        await event_partitions.run(months_ahead=-1)


@pytest.mark.usefixtures("months_made")
async def test_events_of_a_month_without_partition_wait_in_default_then_move(vault: Vault) -> None:
    customer_id = await customer(vault)
    old = datetime(1995, 6, 14, 10, tzinfo=UTC)
    result, _ = await store_events(vault, [event(customer_id, old, "order-1995")])
    (event_id,) = result.accepted.values()
    assert await where_is(event_id) == "events_default"
    assert date(1995, 6, 1) in await partitions.months_waiting()

    made = await event_partitions.run(months_ahead=0)
    assert "events_1995_06" in made.made
    assert await where_is(event_id) == "events_1995_06"
    assert date(1995, 6, 1) not in await partitions.months_waiting()
    # The key moved with it: the same order sent again is still a duplicate.
    assert (await keys())["order-1995"] == event_id
    again, _ = await store_events(vault, [event(customer_id, old, "order-1995")])
    assert again.duplicates == {0: event_id}
    assert await Event.filter(customer_id=customer_id).count() == 1


@pytest.mark.usefixtures("months_made")
async def test_a_new_month_is_the_application_roles_to_read_and_write(
    vault: Vault, database: DatabaseTarget
) -> None:
    customer_id = await customer(vault)
    async with in_transaction():
        assert await partitions.make_month(date(2043, 2, 10)) is True
    name = partitions.name_of(date(2043, 2, 1))
    assert name == "events_2043_02"
    app = await connect(database)
    try:
        assert await app.fetchval("SELECT current_user") == "cdlm_app"
        await app.execute(
            f"INSERT INTO {name} (id, customer_id, type, channel, occurred_at, received_at, "
            "source_system) VALUES ($1, $2, 'visit', 'web', $3, $3, 'web')",
            uuid.uuid4(),
            customer_id,
            datetime(2043, 2, 11, tzinfo=UTC),
        )
        assert await app.fetchval(f"SELECT count(*) FROM {name}") == 1
        assert await app.fetchval(f"UPDATE {name} SET channel = 'app' RETURNING 1") == 1
        assert await app.fetchval(f"DELETE FROM {name} RETURNING 1") == 1
        for refused in (
            f"ALTER TABLE {name} ADD COLUMN forged text",
            f"TRUNCATE {name}",
            f"DROP TABLE {name}",
            f"ALTER TABLE events DETACH PARTITION {name}",
            "ALTER TABLE events DISABLE TRIGGER event_keys_added",
            "TRUNCATE events",
            "TRUNCATE events_default",
            "INSERT INTO event_keys VALUES (gen_random_uuid(), 'shop', 'forged')",
            "DELETE FROM event_keys",
            "CREATE TABLE events_2050_01 PARTITION OF events "
            "FOR VALUES FROM ('2050-01-01') TO ('2050-02-01')",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await app.execute(refused)
        # The owner's functions do only what they say.
        for name_given in ("audit_entries", "events_default", "events_2043_02; DROP TABLE x"):
            with pytest.raises(asyncpg.InvalidParameterValueError, match="not a month of events"):
                await app.execute("SELECT cdlm_drop_event_partition($1)", name_given)
        with pytest.raises(asyncpg.InvalidParameterValueError, match="between 1900 and 2199"):
            await app.execute("SELECT cdlm_event_partition('1492-10-12')")
        assert await app.fetchval("SELECT cdlm_drop_event_partition('events_1800_01')") is False
    finally:
        await app.close()


async def test_no_one_else_may_run_the_partition_functions(owner: asyncpg.Connection) -> None:
    rows = await owner.fetch(
        "SELECT p.proname, r.rolname IS NULL AS to_public, a.privilege_type "
        "FROM pg_proc p CROSS JOIN LATERAL aclexplode(p.proacl) a "
        "LEFT JOIN pg_roles r ON r.oid = a.grantee "
        "WHERE p.proname LIKE 'cdlm_%event%' AND a.grantee <> p.proowner"
    )
    granted = {(row["proname"], row["to_public"]) for row in rows}
    assert granted == {("cdlm_event_partition", False), ("cdlm_drop_event_partition", False)}
    keys_function = await owner.fetchval(
        "SELECT has_function_privilege('cdlm_app', 'cdlm_event_keys()', 'EXECUTE')"
    )
    assert keys_function is False


# ----------------------------------------------------------------------------- event keys


@pytest.mark.usefixtures("months_made")
async def test_an_external_id_is_unique_across_months(vault: Vault) -> None:
    customer_id = await customer(vault)
    for month in (date(2024, 1, 1), date(2024, 7, 1)):
        async with in_transaction():
            await partitions.make_month(month)
    january = datetime(2024, 1, 15, tzinfo=UTC)
    july = datetime(2024, 7, 15, tzinfo=UTC)
    first, _ = await store_events(vault, [event(customer_id, january, "o-1")])
    (first_id,) = first.accepted.values()
    resent, _ = await store_events(vault, [event(customer_id, july, "o-1")])
    assert resent.duplicates == {0: first_id}
    assert resent.accepted == {}
    # Written around the service, the database still refuses it in another month.
    with pytest.raises(OperationalError, match="uid_event_keys"):
        await get_connection("default").execute_query(
            "INSERT INTO events (id, customer_id, type, channel, occurred_at, received_at, "
            "source_system, external_id) VALUES ($1, $2, 'x', 'web', $3, $3, 'shop', 'o-1')",
            [uuid.uuid4(), customer_id, july],
        )
    # Another source may use the same id.
    other, _ = await store_events(
        vault, [EventIngest("purchase", july, "crm", customer_id=customer_id, external_id="o-1")]
    )
    assert len(other.accepted) == 1


@pytest.mark.usefixtures("months_made")
async def test_concurrent_ingestion_of_one_external_id_in_two_months_stores_one(
    vault: Vault,
) -> None:
    customer_id = await customer(vault)
    for month in (date(2024, 2, 1), date(2024, 9, 1)):
        async with in_transaction():
            await partitions.make_month(month)
    for round_number in range(10):
        external_id = f"race-{round_number}"
        outcomes = await asyncio.gather(
            ingest_events(
                SYSTEM, vault, [event(customer_id, datetime(2024, 2, 3, tzinfo=UTC), external_id)]
            ),
            ingest_events(
                SYSTEM, vault, [event(customer_id, datetime(2024, 9, 3, tzinfo=UTC), external_id)]
            ),
        )
        accepted = [r for r, _ in outcomes if r.accepted]
        duplicates = [r for r, _ in outcomes if r.duplicates]
        assert len(accepted) == 1
        assert len(duplicates) == 1
        assert duplicates[0].duplicates[0] == accepted[0].accepted[0]
        assert await Event.filter(external_id=external_id).count() == 1


@pytest.mark.usefixtures("months_made")
async def test_two_writers_bypassing_the_service_cannot_both_commit_one_external_id(
    vault: Vault, database: DatabaseTarget
) -> None:
    """No advisory lock here: the key table alone decides, whichever months the rows go to."""
    customer_id = await customer(vault)
    for month in (date(2024, 3, 1), date(2024, 10, 1)):
        async with in_transaction():
            await partitions.make_month(month)
    insert = (
        "INSERT INTO events (id, customer_id, type, channel, occurred_at, received_at, "
        "source_system, external_id) VALUES ($1, $2, 'x', 'web', $3, $3, 'shop', 'both')"
    )
    first, second = await connect(database), await connect(database)
    try:
        await first.execute("BEGIN")
        await first.execute(insert, uuid.uuid4(), customer_id, datetime(2024, 3, 2, tzinfo=UTC))
        await second.execute("BEGIN")
        waiting = asyncio.create_task(
            second.execute(insert, uuid.uuid4(), customer_id, datetime(2024, 10, 2, tzinfo=UTC))
        )
        await asyncio.sleep(0.3)
        assert not waiting.done()  # it waits for the first writer's key
        await first.execute("COMMIT")
        with pytest.raises(asyncpg.UniqueViolationError):
            await waiting
        await second.execute("ROLLBACK")
    finally:
        await first.close()
        await second.close()
    assert await Event.filter(external_id="both").count() == 1


@pytest.mark.usefixtures("months_made")
async def test_keys_follow_their_events(vault: Vault) -> None:
    customer_id = await customer(vault)
    for month in (date(2024, 4, 1), date(2024, 11, 1)):
        async with in_transaction():
            await partitions.make_month(month)
    april = datetime(2024, 4, 9, tzinfo=UTC)
    stored, _ = await store_events(
        vault,
        [event(customer_id, april, f"k-{n}") for n in range(4)] + [event(customer_id, april)],
    )
    ids = stored.accepted
    assert set(await keys()) == {"k-0", "k-1", "k-2", "k-3"}
    # Deleted: its id may come again (as before partitioning).
    await Event.filter(id=ids[0]).delete()
    # Anonymized: the source id goes, and with it the key.
    await anonymize_events([str(ids[1])])
    # Moved to another month: the key stays, once.
    await Event.filter(id=ids[2]).update(occurred_at=datetime(2024, 11, 2, tzinfo=UTC))
    assert await where_is(ids[2]) == "events_2024_11"
    # Its external id changed: the key changes with it.
    await Event.filter(id=ids[3]).update(external_id="k-3b")
    assert await keys() == {"k-2": ids[2], "k-3b": ids[3]}
    again, _ = await store_events(
        vault, [event(customer_id, april, "k-0"), event(customer_id, april, "k-1")]
    )
    assert len(again.accepted) == 2
    # A customer deleted: their events go with them (the foreign key), and their keys.
    await Customer.filter(id=customer_id).delete()
    assert await Event.all().count() == 0
    assert await keys() == {}
