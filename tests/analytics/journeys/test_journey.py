"""Customer.journey: oldest first with gaps, paging forwards, the event itself masked by
role, the read audit, statements per page and roles."""

from __future__ import annotations

import uuid
from typing import Any

from cdlm.audit.models import AuditPending
from cdlm.vault.service import Vault
from tests.analytics.journeys.conftest import happened, person
from tests.conftest import GraphQLClient
from tests.factories import gid
from tests.support.sql_counter import StatementRecorder

JOURNEY = """
query($id: ID!, $first: Int, $after: String) {
  customer(id: $id) {
    journey(first: $first, after: $after) {
      edges { cursor node { eventType channel occurredAt secondsSincePrevious } }
      pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
    }
  }
}
"""
WITH_EVENT = """
query($id: ID!) {
  customer(id: $id) {
    journey(first: 2) { nodes { eventType event { id type properties } } }
  }
}
"""
LIST = """
query($first: Int!) {
  customers(first: $first) {
    nodes { id journey(first: 2) { nodes { eventType secondsSincePrevious event { type } } } }
  }
}
"""


async def page(
    gql: GraphQLClient, headers: dict[str, str], customer: uuid.UUID, **arguments: Any
) -> Any:
    body = await gql(JOURNEY, {"id": gid("Customer", customer), **arguments}, headers)
    assert "errors" not in body, body
    return body["data"]["customer"]["journey"]


def steps(found: Any) -> list[tuple[str, str, float | None]]:
    return [
        (e["node"]["eventType"], e["node"]["channel"], e["node"]["secondsSincePrevious"])
        for e in found["edges"]
    ]


async def test_pages_forwards_oldest_first_with_the_gaps(
    vault: Vault, gql: GraphQLClient, agent: dict[str, str]
) -> None:
    customer = await person(vault)
    # Sent out of order: the journey is in time order.
    await happened(vault, customer, ("buy", 2), ("view", 0), ("cart", 0.5), channel="web")
    await happened(vault, customer, ("view", 26), ("buy", 27), channel="email")
    first = await page(gql, agent, customer, first=2)
    assert steps(first) == [("view", "web", None), ("cart", "web", 1800.0)]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["pageInfo"]["hasPreviousPage"] is False
    assert first["edges"][0]["node"]["occurredAt"] == "2026-03-02T00:00:00+00:00"
    # The next page's first gap is measured from the previous page's last event.
    second = await page(gql, agent, customer, first=2, after=first["pageInfo"]["endCursor"])
    assert steps(second) == [("buy", "web", 5400.0), ("view", "email", 86400.0)]
    assert (second["pageInfo"]["hasNextPage"], second["pageInfo"]["hasPreviousPage"]) == (
        True,
        True,
    )
    last = await page(gql, agent, customer, first=2, after=second["pageInfo"]["endCursor"])
    assert steps(last) == [("buy", "email", 3600.0)]
    assert last["pageInfo"]["hasNextPage"] is False
    # An edge's cursor pages on from that edge.
    again = await page(gql, agent, customer, first=1, after=first["edges"][0]["cursor"])
    assert steps(again) == [("cart", "web", 1800.0)]
    # Past the end: an empty page.
    empty = await page(gql, agent, customer, after=last["pageInfo"]["endCursor"])
    assert empty["edges"] == []
    assert empty["pageInfo"]["endCursor"] is None


async def test_bad_paging_is_refused_on_its_argument(
    vault: Vault, gql: GraphQLClient, agent: dict[str, str]
) -> None:
    customer = await person(vault)
    await happened(vault, customer, ("view", 0))
    for arguments, field, code in (
        ({"first": 0}, "first", "VALIDATION"),
        ({"first": 101}, "first", "VALIDATION"),
        ({"after": "not-a-cursor"}, "after", "INVALID_CURSOR"),
    ):
        body = await gql(JOURNEY, {"id": gid("Customer", customer), **arguments}, agent)
        (error,) = body["errors"]
        assert (error["extensions"]["field"], error["extensions"]["code"]) == (field, code)
    # A cursor of the customer's events (newest first) is not one of the journey.
    events = await gql(
        "query($id: ID!) { customer(id: $id) { events { pageInfo { endCursor } } } }",
        {"id": gid("Customer", customer)},
        agent,
    )
    cursor = events["data"]["customer"]["events"]["pageInfo"]["endCursor"]
    body = await gql(JOURNEY, {"id": gid("Customer", customer), "after": cursor}, agent)
    assert body["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


async def test_the_event_is_masked_by_role_and_its_read_audited(
    vault: Vault, gql: GraphQLClient, agent: dict[str, str], analyst: dict[str, str]
) -> None:
    customer = await person(vault)
    (view,) = await happened(vault, customer, ("view", 0), properties={"note": "size 42"})
    variables = {"id": gid("Customer", customer)}
    body = await gql(WITH_EVENT, variables, agent)
    (node,) = body["data"]["customer"]["journey"]["nodes"]
    assert node["event"] == {
        "id": gid("Event", view),
        "type": "view",
        "properties": {"note": "size 42"},
    }
    body = await gql(WITH_EVENT, variables, analyst)
    (node,) = body["data"]["customer"]["journey"]["nodes"]
    assert node["event"]["properties"] != {"note": "size 42"}  # masked for analysts
    reads = await AuditPending.filter(fields_touched__contains=["event_properties"])
    assert [(r.actor_role, r.subject_ids) for r in reads] == [
        ("agent", [customer]),
        ("analyst", [customer]),
    ]
    # Without the properties, nothing personal was read.
    await gql(JOURNEY, variables, agent)
    assert await AuditPending.filter(fields_touched__contains=["event_properties"]).count() == 2


async def test_a_page_of_customers_reads_their_journeys_in_the_same_statements(
    vault: Vault, gql: GraphQLClient, analyst: dict[str, str], sql: StatementRecorder
) -> None:
    for _ in range(5):
        customer = await person(vault)
        await happened(vault, customer, ("view", 0), ("cart", 1), ("buy", 3))
    await gql("{ viewer { role } }", headers=analyst)  # records the key's last use once
    counts = []
    for size in (2, 5):
        sql.statements.clear()
        with sql.recording():
            body = await gql(LIST, {"first": size}, analyst)
        assert "errors" not in body, body
        nodes = body["data"]["customers"]["nodes"]
        assert len(nodes) == size
        assert all(
            [(s["eventType"], s["secondsSincePrevious"]) for s in n["journey"]["nodes"]]
            == [("view", None), ("cart", 3600.0)]
            for n in nodes
        )
        assert all(
            s["event"]["type"] == s["eventType"] for n in nodes for s in n["journey"]["nodes"]
        )
        counts.append(sql.count)
    assert counts[0] == counts[1], sql.statements


async def test_roles(vault: Vault, gql: GraphQLClient, ingest: dict[str, str]) -> None:
    customer = await person(vault)
    await happened(vault, customer, ("view", 0))
    variables = {"id": gid("Customer", customer)}
    body = await gql(JOURNEY, variables)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = await gql(JOURNEY, variables, ingest)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
