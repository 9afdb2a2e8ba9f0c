"""An erasure removes the person's events from every month of events (and their keys), and a
hold on one event type keeps those events, whichever months they are in."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest
from tortoise.connection import get_connection
from tortoise.transactions import in_transaction

from cdlm.core.principal import SYSTEM
from cdlm.customers import partitions
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.models import Event, EventKey
from cdlm.retention import service as retention
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.customers.test_event_partitions import months_made  # noqa: F401 - a fixture
from tests.dsr.support import approved, execute
from tests.factories import make_customer

EMAIL = "ines.quartermaine@example.com"
MOMENTS = [
    datetime(2025, 5, 3, tzinfo=UTC),  # a month of its own
    datetime(2025, 8, 9, tzinfo=UTC),  # another
    datetime(1999, 1, 1, tzinfo=UTC),  # no month: the default partition
]


async def _spread(vault: Vault) -> tuple[uuid.UUID, uuid.UUID]:
    for month in (date(2025, 5, 1), date(2025, 8, 1)):
        async with in_transaction():
            await partitions.make_month(month)
    ines = (await make_customer(vault, email=EMAIL, given_name="Ines")).customer_id
    other = (await make_customer(vault, email="otto@example.com", given_name="Otto")).customer_id
    for person in (ines, other):
        result, _ = await store_events(
            vault,
            [
                EventIngest(
                    type=kind,
                    occurred_at=at,
                    source_system="shop",
                    customer_id=person,
                    external_id=f"{person}-{n}-{kind}",
                    properties={"note": "hello"},
                )
                for n, at in enumerate(MOMENTS)
                for kind in ("purchase", "page_view")
            ],
        )
        assert len(result.accepted) == 6
    return ines, other


async def _homes(customer_id: uuid.UUID) -> set[str]:
    rows = await get_connection("default").execute_query_dict(
        "SELECT DISTINCT tableoid::regclass::text AS home FROM events WHERE customer_id = $1",
        [customer_id],
    )
    return {row["home"] for row in rows}


@pytest.mark.usefixtures("months_made")
async def test_an_erasure_removes_the_persons_events_from_every_month(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    ines, other = await _spread(vault)
    assert await _homes(ines) == {"events_2025_05", "events_2025_08", "events_default"}
    request_id = await approved(gql, admin_headers, "ERASURE", EMAIL)
    done = await execute(gql, admin_headers, request_id)
    assert done["request"]["status"] == "COMPLETED", done
    assert await Event.filter(customer_id=ines).count() == 0
    assert await Event.filter(customer_id=other).count() == 6
    remaining = await EventKey.all().values_list("external_id", flat=True)
    assert sorted(remaining) == sorted(k for k in remaining if k.startswith(str(other)))
    assert len(remaining) == 6


@pytest.mark.usefixtures("months_made")
async def test_a_type_hold_keeps_those_events_in_every_month(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    ines, _ = await _spread(vault)
    await retention.place_hold(SYSTEM, reason="Tax records", category="events.purchase")
    request_id = await approved(gql, admin_headers, "ERASURE", EMAIL)
    done = await execute(gql, admin_headers, request_id)
    assert done["request"]["status"] == "COMPLETED", done
    kept = await Event.filter(customer_id=ines).values_list("type", flat=True)
    assert kept == ["purchase"] * 3
    assert await _homes(ines) == {"events_2025_05", "events_2025_08", "events_default"}
