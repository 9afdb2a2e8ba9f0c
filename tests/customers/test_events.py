"""ingestEvents: per-item results, addressing, encryption, duplicates, limits and paging."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import Role
from cdlm.customers.models import Customer, Event
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer
from tests.support.sql_counter import StatementRecorder

INGEST_EVENTS = """
mutation($events: [EventInput!]!, $key: String) {
  ingestEvents(input: {events: $events}, idempotencyKey: $key) {
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
query($id: ID!, $filter: EventFilter, $first: Int, $after: String, $last: Int,
      $before: String) {
  customer(id: $id) {
    lastActivityAt
    events(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
      nodes { id type channel occurredAt amount currency properties externalId }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
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
    cid = gid("Customer", customer.customer_id)
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
    assert statuses[2] == ("REJECTED", ["input.events.2.type"])
    assert statuses[3] == ("REJECTED", ["input.events.3.customerId"])
    assert statuses[4] == ("REJECTED", ["input.events.4.currency"])
    assert statuses[5] == ("REJECTED", ["input.events.5.currency"])
    assert statuses[6] == ("REJECTED", ["input.events.6"])
    assert statuses[7] == ("REJECTED", ["input.events.7.occurredAt"])
    assert statuses[8] == ("REJECTED", ["input.events.8.customerId"])
    assert statuses[9] == ("REJECTED", ["input.events.9.properties"])
    assert [i["code"] for i in result["items"][3]["issues"]] == ["INVALID_ID"]
    assert [i["eventId"] is not None for i in result["items"]] == [True, True] + [False] * 8
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
    cid = gid("Customer", customer.customer_id)
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
    items = [event(n, customerId=gid("Customer", customer.customer_id)) for n in range(1001)]
    result = await send(gql, ingest_headers, items)
    assert result == {
        "__typename": "ValidationError",
        "message": "A batch holds at most 1000 events.",
        "code": "TOO_MANY_ITEMS",
        "field": "input.events",
    }
    assert await Event.all().count() == 0


async def test_replayed_batch_and_resent_events_are_not_stored_twice(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="dup@example.com")
    cid = gid("Customer", customer.customer_id)
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
    cid = gid("Customer", customer.customer_id)
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
    views = await gql(EVENTS, {"id": cid, "filter": {"type": "page.viewed"}}, headers=headers)
    assert len(views["data"]["customer"]["events"]["nodes"]) == 3
    window = await gql(
        EVENTS,
        {
            "id": cid,
            "filter": {
                "occurredFrom": (BASE + timedelta(minutes=2)).isoformat(),
                "occurredTo": (BASE + timedelta(minutes=4)).isoformat(),
            },
        },
        headers=headers,
    )
    assert len(window["data"]["customer"]["events"]["nodes"]) == 2
    bad = await gql(EVENTS, {"id": cid, "after": "garbage"}, headers=headers)
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
    assert bad["errors"][0]["extensions"]["field"] == "after"


async def test_only_ingesters_may_send_events(gql: GraphQLClient, auth: AuthSettings) -> None:
    analyst = bearer(await make_api_key(auth, Role.ANALYST))
    body = await gql(INGEST_EVENTS, {"events": [event(0)]}, headers=analyst)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_events_page_backwards_from_the_oldest_or_a_cursor(
    gql: GraphQLClient,
    vault: Vault,
    auth: AuthSettings,
    ingest_headers: dict[str, str],
    sql: StatementRecorder,
) -> None:
    customer = await make_customer(vault, email="back@example.com")
    cid = gid("Customer", customer.customer_id)
    items = [
        event(n, customerId=cid, type="page.viewed" if n % 2 else "order.placed") for n in range(7)
    ]
    sent = await send(gql, ingest_headers, items)
    newest_first = [item["eventId"] for item in reversed(sent["items"])]
    headers = bearer(await make_api_key(auth, Role.AGENT))
    await gql("{ viewer { role } }", headers=headers)  # records the key's last use once

    async def page(**arguments: Any) -> dict[str, Any]:
        body = await gql(EVENTS, {"id": cid, **arguments}, headers=headers)
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["customer"]["events"]
        return result

    def ids(result: dict[str, Any]) -> list[str]:
        return [node["id"] for node in result["nodes"]]

    with sql.recording():
        forwards = await page(first=3)
    forward_statements = sql.count  # the customer with its page, and the read audit
    assert ids(forwards) == newest_first[:3]
    assert forwards["pageInfo"]["hasPreviousPage"] is False
    # The end of the list (the oldest events), still shown newest first.
    end = await page(last=3)
    assert ids(end) == newest_first[4:]
    info = end["pageInfo"]
    assert (info["hasPreviousPage"], info["hasNextPage"]) == (True, False)
    seen = ids(end)
    before = info["startCursor"]
    while True:
        with sql.recording():
            earlier = await page(last=3, before=before)
        # Read ahead with the customer, like a forward page: never a statement of its own.
        assert sql.count == forward_statements, sql.statements
        assert earlier["pageInfo"]["hasNextPage"] is True
        seen = ids(earlier) + seen
        if not earlier["pageInfo"]["hasPreviousPage"]:
            break
        before = earlier["pageInfo"]["startCursor"]
    assert seen == newest_first
    assert ids(earlier) == newest_first[:1]
    # The filter applies both ways.
    orders = await page(last=2, filter={"type": "order.placed"})
    assert [n["type"] for n in orders["nodes"]] == ["order.placed"] * 2
    assert ids(orders) == [newest_first[4], newest_first[6]]
    assert orders["pageInfo"]["hasPreviousPage"] is True
    # A page bounded on both sides.
    between = await page(
        first=10, after=forwards["pageInfo"]["endCursor"], before=end["pageInfo"]["startCursor"]
    )
    assert ids(between) == newest_first[3:4]
    assert (between["pageInfo"]["hasPreviousPage"], between["pageInfo"]["hasNextPage"]) == (
        True,
        False,
    )
    both = await gql(EVENTS, {"id": cid, "first": 1, "last": 1}, headers=headers)
    assert both["errors"][0]["extensions"]["field"] == "last"


async def test_a_graphql_type_error_fails_the_document_a_semantic_one_stays_an_item_status(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="typed@example.com")
    cid = gid("Customer", customer.customer_id)
    # Not a date-time, not a decimal, a missing required field, an unknown field, a number
    # for a string: the document's types are broken, the whole request is refused.
    for broken in (
        {"occurredAt": "yesterday"},
        {"amount": "ten", "currency": "EUR"},
        {"amount": True, "currency": "EUR"},
        {"type": None},
        {"colour": "red"},
        {"type": 42},
        {"identifier": {"kind": "FAX", "value": "1"}},
    ):
        body = await gql(
            INGEST_EVENTS,
            {"events": [event(0, customerId=cid), {**event(1, customerId=cid), **broken}]},
            headers=ingest_headers,
        )
        assert body.get("data") is None, broken
        assert body["errors"], broken
        assert await Event.all().count() == 0, broken
    # A well-typed value that breaks a rule: that item alone is refused.
    result = await send(
        gql,
        ingest_headers,
        [
            event(0, customerId=cid),
            event(1, customerId=cid, occurredAt="1900-01-01T00:00:00+00:00"),
            event(2, customerId=cid, occurredAt="2026-06-01T12:00:00"),
            event(3, customerId=cid),
        ],
    )
    assert [(i["status"], [x["field"] for x in i["issues"]]) for i in result["items"]] == [
        ("ACCEPTED", []),
        ("REJECTED", ["input.events.1.occurredAt"]),
        ("REJECTED", ["input.events.2.occurredAt"]),
        ("ACCEPTED", []),
    ]
    assert [x["code"] for x in result["items"][1]["issues"]] == ["IMPLAUSIBLE"]
    assert [x["code"] for x in result["items"][2]["issues"]] == ["INVALID_FORMAT"]
    assert await Event.all().count() == 2


async def test_a_malformed_customer_id_rejects_its_item_only(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="ids@example.com")
    cid = gid("Customer", customer.customer_id)
    handed_back = []
    for wrong in (str(customer.customer_id), gid("Event", customer.customer_id), "", "@@"):
        result = await send(
            gql,
            ingest_headers,
            [event(0, customerId=cid), event(1, customerId=wrong), event(2, customerId=cid)],
        )
        assert [i["status"] for i in result["items"]] == ["ACCEPTED", "REJECTED", "ACCEPTED"]
        assert result["items"][1]["issues"] == [
            {"field": "input.events.1.customerId", "code": "INVALID_ID"}
        ]
        assert result["items"][1]["eventId"] is None
        handed_back += [result["items"][0]["eventId"], result["items"][2]["eventId"]]
    stored = await Event.filter(customer_id=customer.customer_id)
    assert len(stored) == 8  # the two neighbours of each of the four batches
    # The ids handed back are the stored events' global ids (the batches' events share their
    # moments, so they are compared as sets, not in an order of time).
    assert sorted(handed_back) == sorted(gid("Event", e.id) for e in stored)


async def test_an_unknown_customer_is_reported_on_the_item_with_its_position(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="known@example.com")
    cid = gid("Customer", customer.customer_id)
    # The malformed item before it shifts the positions the service sees: the issue still
    # names the item's own place in input.events.
    result = await send(
        gql,
        ingest_headers,
        [
            event(0, customerId="@@"),
            event(1, customerId=cid),
            event(2, customerId=gid("Customer", uuid.uuid4())),
            event(3, customerId=cid, currency="EUR"),
        ],
    )
    assert [(i["index"], i["status"], i["issues"]) for i in result["items"]] == [
        (0, "REJECTED", [{"field": "input.events.0.customerId", "code": "INVALID_ID"}]),
        (1, "ACCEPTED", []),
        (2, "REJECTED", [{"field": "input.events.2", "code": "NOT_FOUND"}]),
        (3, "REJECTED", [{"field": "input.events.3.currency", "code": "REQUIRED"}]),
    ]


@pytest.mark.parametrize("key", ["", "   ", "k" * 201])
async def test_a_malformed_idempotency_key_refuses_the_batch(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str], key: str
) -> None:
    customer = await make_customer(vault, email="key@example.com")
    result = await send(
        gql, ingest_headers, [event(0, customerId=gid("Customer", customer.customer_id))], key
    )
    assert (result["__typename"], result["field"]) == ("ValidationError", "idempotencyKey")
    assert await Event.all().count() == 0


async def test_a_batch_of_malformed_items_only_is_answered_item_by_item(
    gql: GraphQLClient, ingest_headers: dict[str, str]
) -> None:
    batch = [event(0, customerId="@@"), event(1, customerId="##", properties=[1])]
    first = await send(gql, ingest_headers, batch, key="only-bad")
    assert (first["accepted"], first["rejected"]) == (0, 2)
    assert [i["issues"] for i in first["items"]] == [
        [{"field": "input.events.0.customerId", "code": "INVALID_ID"}],
        [
            {"field": "input.events.1.customerId", "code": "INVALID_ID"},
            {"field": "input.events.1.properties", "code": "INVALID_FORMAT"},
        ],
    ]
    assert await send(gql, ingest_headers, batch, key="only-bad") == {**first, "replayed": True}
    assert await send(gql, ingest_headers, []) == {
        "__typename": "EventsIngested",
        "accepted": 0,
        "duplicates": 0,
        "rejected": 0,
        "replayed": False,
        "items": [],
    }
    assert await Event.all().count() == 0
