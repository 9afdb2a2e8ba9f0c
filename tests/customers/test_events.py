"""ingestEvents: per-item results, addressing, encryption, duplicates, limits and paging."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import Role
from cdlm.customers.models import Customer, Event
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, make_api_key, make_customer

INGEST_EVENTS = """
mutation($events: [EventRecord!]!, $key: String) {
  ingestEvents(events: $events, idempotencyKey: $key) {
    __typename
    ... on EventsIngested {
      accepted duplicates rejected replayed
      items { index status eventId issues { field code } }
    }
    ... on UserError { message code field }
  }
}
"""
EVENTS = """
query($id: ID!, $first: Int, $after: String, $type: String, $from: DateTime, $to: DateTime) {
  customer(id: $id) {
    lastActivityAt
    events(first: $first, after: $after, type: $type, occurredFrom: $from, occurredTo: $to) {
      nodes { type channel occurredAt amount currency properties externalId }
      pageInfo { hasNextPage endCursor }
    }
  }
}
"""
BASE = datetime(2026, 6, 1, 12, tzinfo=UTC)


def event(n: int = 0, **overrides: Any) -> dict[str, Any]:
    return {
        "type": "order.placed",
        "occurredAt": (BASE + timedelta(minutes=n)).isoformat(),
        "sourceSystem": "shop",
        "channel": "web",
        **overrides,
    }


@pytest.fixture
async def ingest_headers(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.INGEST))


async def send(
    gql: GraphQLClient,
    headers: dict[str, str],
    events: list[dict[str, Any]],
    key: str | None = None,
) -> dict[str, Any]:
    body = await gql(INGEST_EVENTS, {"events": events, "key": key}, headers=headers)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["ingestEvents"]
    return result


async def test_valid_items_are_stored_and_invalid_ones_reported(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="buyer@example.com", phone="+44 7911 123456")
    cid = str(customer.customer_id)
    result = await send(
        gql,
        ingest_headers,
        [
            event(
                0,
                customerId=cid,
                amount="19.99",
                currency="GBP",
                properties={"items": ["book"], "note": "gift for Jane"},
            ),
            event(1, identifier={"kind": "EMAIL", "value": "BUYER@example.com"}),
            event(2, identifier={"kind": "PHONE", "value": "+447911123456"}, type="Bad Type"),
            event(3, customerId="not-a-uuid"),
            event(4, customerId=cid, amount="5.00"),
            event(5, customerId=cid, currency="XXY", amount="1"),
            event(6, identifier={"kind": "EMAIL", "value": "nobody@example.com"}),
            event(7, customerId=cid, occurredAt="2999-01-01T00:00:00+00:00"),
            event(8),
            event(9, customerId=cid, properties=[1, 2]),
        ],
    )
    assert (result["accepted"], result["duplicates"], result["rejected"]) == (2, 0, 8)
    statuses = {
        item["index"]: (item["status"], [i["field"] for i in item["issues"]])
        for item in result["items"]
    }
    assert statuses[0] == ("ACCEPTED", [])
    assert statuses[1] == ("ACCEPTED", [])
    assert statuses[2] == ("REJECTED", ["events[2].type"])
    assert statuses[3] == ("REJECTED", ["events[3].customerId"])
    assert statuses[4] == ("REJECTED", ["events[4].currency"])
    assert statuses[5] == ("REJECTED", ["events[5].currency"])
    assert statuses[6] == ("REJECTED", ["events[6]"])
    assert statuses[7] == ("REJECTED", ["events[7].occurredAt"])
    assert statuses[8] == ("REJECTED", ["events[8].customerId"])
    assert statuses[9] == ("REJECTED", ["events[9].properties"])
    stored = await Event.filter(customer_id=customer.customer_id).order_by("occurred_at")
    assert [e.type for e in stored] == ["order.placed", "order.placed"]
    assert stored[0].properties_sealed is not None
    assert b"Jane" not in bytes(stored[0].properties_sealed)
    assert str(stored[0].amount) == "19.99"
    refreshed = await Customer.get(id=customer.customer_id)
    assert refreshed.last_activity_at == BASE + timedelta(minutes=1)


async def test_properties_are_decrypted_for_cleared_roles_only(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="p@example.com")
    cid = str(customer.customer_id)
    await send(gql, ingest_headers, [event(0, customerId=cid, properties={"note": "allergy"})])
    steward = bearer(await make_api_key(auth, Role.STEWARD))
    analyst = bearer(await make_api_key(auth, Role.ANALYST))
    clear = (await gql(EVENTS, {"id": cid}, headers=steward))["data"]["customer"]["events"]
    masked = (await gql(EVENTS, {"id": cid}, headers=analyst))["data"]["customer"]["events"]
    assert clear["nodes"][0]["properties"] == {"note": "allergy"}
    assert masked["nodes"][0]["properties"] is None
    assert masked["nodes"][0]["type"] == "order.placed"


async def test_more_than_1000_events_are_refused_whole(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="many@example.com")
    items = [event(n, customerId=str(customer.customer_id)) for n in range(1001)]
    result = await send(gql, ingest_headers, items)
    assert result == {
        "__typename": "ValidationError",
        "message": "A batch holds at most 1000 events.",
        "code": "TOO_MANY_ITEMS",
        "field": "events",
    }
    assert await Event.all().count() == 0


async def test_replayed_batch_and_resent_events_are_not_stored_twice(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="dup@example.com")
    cid = str(customer.customer_id)
    batch = [event(n, customerId=cid, externalId=f"ord-{n}") for n in range(3)]
    first = await send(gql, ingest_headers, batch, key="batch-1")
    replay = await send(gql, ingest_headers, batch, key="batch-1")
    assert replay == {**first, "replayed": True}
    resent = await send(
        gql, ingest_headers, [*batch[:2], event(9, customerId=cid, externalId="ord-9")]
    )
    assert (resent["accepted"], resent["duplicates"]) == (1, 2)
    assert resent["items"][0]["eventId"] == first["items"][0]["eventId"]
    within = await send(
        gql,
        ingest_headers,
        [event(20, customerId=cid, externalId="x"), event(21, customerId=cid, externalId="x")],
    )
    assert [i["status"] for i in within["items"]] == ["ACCEPTED", "DUPLICATE"]
    assert await Event.all().count() == 5


async def test_events_page_newest_first_with_filters(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="pages@example.com")
    cid = str(customer.customer_id)
    items = [
        event(n, customerId=cid, type="page.viewed" if n % 2 else "order.placed") for n in range(7)
    ]
    await send(gql, ingest_headers, items)
    headers = bearer(await make_api_key(auth, Role.AGENT))
    seen: list[str] = []
    after = None
    while True:
        body = await gql(EVENTS, {"id": cid, "first": 3, "after": after}, headers=headers)
        page = body["data"]["customer"]["events"]
        seen.extend(node["occurredAt"] for node in page["nodes"])
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == sorted(seen, reverse=True)
    assert len(seen) == 7
    views = await gql(EVENTS, {"id": cid, "type": "page.viewed"}, headers=headers)
    assert len(views["data"]["customer"]["events"]["nodes"]) == 3
    window = await gql(
        EVENTS,
        {
            "id": cid,
            "from": (BASE + timedelta(minutes=2)).isoformat(),
            "to": (BASE + timedelta(minutes=4)).isoformat(),
        },
        headers=headers,
    )
    assert len(window["data"]["customer"]["events"]["nodes"]) == 2
    bad = await gql(EVENTS, {"id": cid, "after": "garbage"}, headers=headers)
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


async def test_only_ingesters_may_send_events(gql: GraphQLClient, auth: AuthSettings) -> None:
    analyst = bearer(await make_api_key(auth, Role.ANALYST))
    body = await gql(INGEST_EVENTS, {"events": [event(0)]}, headers=analyst)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
