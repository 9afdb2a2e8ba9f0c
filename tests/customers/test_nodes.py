"""node(id:) and nodes(ids:) on customers, their events and source records: the roles of the
customer queries, masking, the read audit, unknown ids as null and malformed ones refused."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.core.roles import Role
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.models import Customer
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer
from tests.support.audit import read_records

NODE = """
query($id: ID!) {
  node(id: $id) {
    __typename id
    ... on Customer { profile { email } }
    ... on Event { type amount currency properties }
    ... on SourceRecord { sourceSystem sourceKind outcome }
  }
}
"""
NODES = """
query($ids: [ID!]!) {
  nodes(ids: $ids) { __typename id ... on Event { type } ... on Customer { lifecycleStage } }
}
"""
NO_PERSONAL_FIELDS = "query($id: ID!) { node(id: $id) { id ... on Event { type } } }"


class Made:
    def __init__(self, customer: uuid.UUID, event: uuid.UUID, source_record: uuid.UUID) -> None:
        self.customer = customer
        self.event = event
        self.source_record = source_record

    def ids(self) -> dict[str, str]:
        return {
            "Customer": gid("Customer", self.customer),
            "Event": gid("Event", self.event),
            "SourceRecord": gid("SourceRecord", self.source_record),
        }


@pytest.fixture
async def made(vault: Vault) -> Made:
    created = await make_customer(vault, email="node@example.com")
    result, _ = await store_events(
        vault,
        [
            EventIngest(
                type="order.placed",
                occurred_at=datetime(2026, 5, 1, tzinfo=UTC),
                source_system="shop",
                customer_id=created.customer_id,
                amount=None,
                properties={"note": "gift for Jane"},
            )
        ],
    )
    (event_id,) = result.accepted.values()
    return Made(created.customer_id, event_id, created.source_record_id)


async def _node(
    gql: GraphQLClient, headers: dict[str, str], global_id: str, query: str = NODE
) -> dict[str, Any]:
    return await gql(query, {"id": global_id}, headers=headers)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.STEWARD, Role.AGENT, Role.ANALYST])
async def test_each_kind_is_fetched_by_the_roles_that_read_customers(
    gql: GraphQLClient, auth: AuthSettings, made: Made, role: Role
) -> None:
    headers = bearer(await make_api_key(auth, role))
    ids = made.ids()
    clear = role is not Role.ANALYST
    customer = (await _node(gql, headers, ids["Customer"]))["data"]["node"]
    assert customer == {
        "__typename": "Customer",
        "id": ids["Customer"],
        "profile": {"email": "node@example.com" if clear else "n***@example.com"},
    }
    event = (await _node(gql, headers, ids["Event"]))["data"]["node"]
    assert event == {
        "__typename": "Event",
        "id": ids["Event"],
        "type": "order.placed",
        "amount": None,
        "currency": None,
        # Free-form properties have no partial view: withheld from analysts.
        "properties": {"note": "gift for Jane"} if clear else None,
    }
    record = (await _node(gql, headers, ids["SourceRecord"]))["data"]["node"]
    assert record == {
        "__typename": "SourceRecord",
        "id": ids["SourceRecord"],
        "sourceSystem": "crm",
        "sourceKind": "CRM",
        "outcome": "CREATED",
    }


async def test_an_events_properties_read_through_node_is_audited(
    gql: GraphQLClient, auth: AuthSettings, made: Made
) -> None:
    headers = bearer(await make_api_key(auth, Role.STEWARD))
    await _node(gql, headers, made.ids()["Event"], NO_PERSONAL_FIELDS)
    assert await read_records("customer.read", made.customer) == []
    await _node(gql, headers, made.ids()["Event"])
    [entry] = await read_records("customer.read", made.customer)
    assert entry.fields_touched == ["event_properties"]
    # Through nodes too, and through a fragment.
    await gql(
        "query($ids: [ID!]!) { nodes(ids: $ids) { ...E } } fragment E on Event { properties }",
        {"ids": [made.ids()["Event"]]},
        headers=headers,
    )
    assert len(await read_records("customer.read", made.customer)) == 2


async def test_a_customer_read_through_node_is_audited(
    gql: GraphQLClient, auth: AuthSettings, made: Made
) -> None:
    headers = bearer(await make_api_key(auth, Role.AGENT))
    await _node(gql, headers, made.ids()["Customer"])
    [entry] = await read_records("customer.read", made.customer)
    assert entry.fields_touched == ["email"]


@pytest.mark.parametrize("kind", ["Customer", "Event", "SourceRecord"])
async def test_the_ingest_role_may_not_fetch_them(
    gql: GraphQLClient, auth: AuthSettings, made: Made, kind: str
) -> None:
    headers = bearer(await make_api_key(auth, Role.INGEST))
    body = await _node(gql, headers, made.ids()[kind])
    assert body["data"] == {"node": None}
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    both = await gql(NODES, {"ids": [made.ids()[kind]]}, headers=headers)
    assert both["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert "node@example.com" not in str(body) + str(both)


@pytest.mark.parametrize("kind", ["Customer", "Event", "SourceRecord"])
async def test_an_unknown_id_is_null(
    gql: GraphQLClient, auth: AuthSettings, made: Made, kind: str
) -> None:
    headers = bearer(await make_api_key(auth, Role.ADMIN))
    assert await _node(gql, headers, gid(kind, uuid.uuid4())) == {"data": {"node": None}}


async def test_a_malformed_id_is_an_invalid_id_error(
    gql: GraphQLClient, auth: AuthSettings, made: Made
) -> None:
    headers = bearer(await make_api_key(auth, Role.ADMIN))
    for bad in (str(made.customer), "not-an-id", gid("Nothing", made.customer)):
        body = await _node(gql, headers, bad)
        (error,) = body["errors"]
        assert (error["extensions"]["code"], error["extensions"]["field"]) == ("INVALID_ID", "id")
    body = await gql(NODES, {"ids": [made.ids()["Customer"], "garbage"]}, headers=headers)
    (error,) = body["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == ("INVALID_ID", "ids.1")


async def test_nodes_answers_in_the_order_asked_with_null_for_unknown_and_erased(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings, made: Made
) -> None:
    headers = bearer(await make_api_key(auth, Role.STEWARD))
    other = await make_customer(vault, email="other@example.com")
    ids = made.ids()
    asked = [
        ids["Event"],
        gid("Customer", uuid.uuid4()),
        ids["Customer"],
        gid("Customer", other.customer_id),
        gid("Event", uuid.uuid4()),
    ]
    body = await gql(NODES, {"ids": asked}, headers=headers)
    assert body["data"]["nodes"] == [
        {"__typename": "Event", "id": ids["Event"], "type": "order.placed"},
        None,
        {"__typename": "Customer", "id": ids["Customer"], "lifecycleStage": "LEAD"},
        {"__typename": "Customer", "id": asked[3], "lifecycleStage": "LEAD"},
        None,
    ]
    # An erased customer, its events and its source records are gone for node too (rows a
    # legal hold keeps through erasure stay with the erased customer, unreadable here).
    await Customer.filter(id=made.customer).update(erased_at=clock.now())
    body = await gql(
        NODES, {"ids": [ids["Customer"], ids["Event"], ids["SourceRecord"]]}, headers=headers
    )
    assert body["data"]["nodes"] == [None, None, None]
