"""Legal holds through the API: placing, listing, releasing, their customer, and their failure
modes."""

from __future__ import annotations

import uuid
from datetime import timedelta

from cdlm.audit.models import AuditEntry
from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.holds.models import LegalHold
from cdlm.holds.service import holds_on
from cdlm.retention import service as holds
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer
from tests.support.sql_counter import StatementRecorder

PLACE = """
mutation($input: PlaceLegalHoldInput!) {
  placeLegalHold(input: $input) {
    __typename
    ... on LegalHoldSaved {
      legalHold { id customerId category eventType reason endsAt releasedAt inForce }
    }
    ... on ValidationError { code field issues { field code } }
    ... on UserError { code field message }
  }
}
"""
RELEASE = """
mutation($id: ID!) {
  releaseLegalHold(input: {id: $id}) {
    __typename
    ... on LegalHoldSaved { legalHold { id releasedAt inForce } }
    ... on UserError { code field message }
  }
}
"""
LIST = """
query($filter: LegalHoldFilter, $first: Int, $after: String, $last: Int, $before: String) {
  legalHolds(filter: $filter, first: $first, after: $after, last: $last, before: $before) {
    totalCount
    nodes { id reason inForce }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""
NODE = "query($id: ID!) { node(id: $id) { __typename id ... on LegalHold { reason } } }"


async def test_a_hold_on_a_customer_is_placed_listed_and_released(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    customer = (await make_customer(vault, email="held@example.com")).customer_id
    answer = await gql(
        PLACE,
        {"input": {"customerId": gid("Customer", customer), "reason": "Claim 2026-17"}},
        admin_headers,
    )
    hold = answer["data"]["placeLegalHold"]["legalHold"]
    stored = await LegalHold.get(customer_id=customer)
    assert hold == {
        "id": gid("LegalHold", stored.id),
        "customerId": gid("Customer", customer),
        "category": None,
        "eventType": None,
        "reason": "Claim 2026-17",
        "endsAt": None,
        "releasedAt": None,
        "inForce": True,
    }
    assert [h.reason for h in await holds_on(customer)] == ["Claim 2026-17"]
    listed = await gql(LIST, {}, admin_headers)
    assert [h["id"] for h in listed["data"]["legalHolds"]["nodes"]] == [hold["id"]]
    released = await gql(RELEASE, {"id": hold["id"]}, admin_headers)
    assert released["data"]["releaseLegalHold"]["legalHold"]["releasedAt"] is not None
    assert released["data"]["releaseLegalHold"]["legalHold"]["inForce"] is False
    assert await holds_on(customer) == []
    again = await gql(RELEASE, {"id": hold["id"]}, admin_headers)
    assert (
        again["data"]["releaseLegalHold"]["code"],
        again["data"]["releaseLegalHold"]["field"],
    ) == (
        "INVALID_STATE",
        "input.id",
    )
    assert (await gql(LIST, {}, admin_headers))["data"]["legalHolds"]["nodes"] == []
    ended = await gql(LIST, {"filter": {"includeEnded": True}}, admin_headers)
    assert ended["data"]["legalHolds"]["totalCount"] == 1
    actions = await AuditEntry.filter(target_type="legal_hold").values_list("action", flat=True)
    assert sorted(actions) == ["retention.hold", "retention.release"]


async def test_a_category_hold_applies_to_everyone_until_its_end(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    customer = (await make_customer(vault, email="anyone@example.com")).customer_id
    ends = (clock.now() + timedelta(days=30)).isoformat()
    answer = await gql(
        PLACE,
        {
            "input": {
                "category": "EVENTS",
                "eventType": "purchase",
                "reason": "Tax",
                "endsAt": ends,
            }
        },
        admin_headers,
    )
    hold = answer["data"]["placeLegalHold"]["legalHold"]
    assert (hold["category"], hold["eventType"], hold["customerId"]) == (
        "EVENTS",
        "purchase",
        None,
    )
    assert (await LegalHold.get()).category == "events.purchase"
    assert len(await holds_on(customer)) == 1
    with clock.travel(timedelta(days=31)):
        assert await holds_on(customer) == []
        listed = await gql(LIST, {"filter": {"includeEnded": True}}, admin_headers)
        assert [h["inForce"] for h in listed["data"]["legalHolds"]["nodes"]] == [False]
        gone = await gql(RELEASE, {"id": hold["id"]}, admin_headers)
        assert gone["data"]["releaseLegalHold"]["code"] == "INVALID_STATE"


async def test_bad_holds_are_refused_and_nothing_is_stored(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    past = (clock.now() - timedelta(days=1)).isoformat()
    nobody = gid("Customer", uuid.uuid4())
    cases = [
        ({"reason": "both missing"}, "REQUIRED", "input"),
        ({"reason": "both", "customerId": nobody, "category": "EVENTS"}, "REQUIRED", "input"),
        ({"reason": "odd", "eventType": "purchase"}, "INVALID_FORMAT", "input.eventType"),
        (
            {"reason": "odd", "category": "SOURCE_RECORDS", "eventType": "x"},
            "INVALID_FORMAT",
            "input.eventType",
        ),
        (
            {"reason": "odd", "category": "EVENTS", "eventType": "Purchase!"},
            "INVALID_FORMAT",
            "input.eventType",
        ),
        ({"reason": " ", "category": "EVENTS"}, "REQUIRED", "input.reason"),
        ({"reason": "x" * 501, "category": "EVENTS"}, "INVALID_FORMAT", "input.reason"),
        ({"reason": "ended", "category": "EVENTS", "endsAt": past}, "IMPLAUSIBLE", "input.endsAt"),
        ({"reason": "nobody", "customerId": nobody}, "NOT_FOUND", "input.customerId"),
        ({"reason": "malformed", "customerId": "nope"}, "INVALID_ID", "input.customerId"),
        ({"reason": "a uuid", "customerId": str(uuid.uuid4())}, "INVALID_ID", "input.customerId"),
    ]
    for given, code, field in cases:
        answer = await gql(PLACE, {"input": given}, admin_headers)
        refused = answer["data"]["placeLegalHold"]
        assert (refused["code"], refused["field"]) == (code, field), (given, refused)
    assert await LegalHold.all().count() == 0
    unknown = await gql(RELEASE, {"id": gid("LegalHold", uuid.uuid4())}, admin_headers)
    assert unknown["data"]["releaseLegalHold"]["code"] == "NOT_FOUND"
    other_kind = await gql(RELEASE, {"id": gid("RetentionPolicy", uuid.uuid4())}, admin_headers)
    assert (
        other_kind["data"]["releaseLegalHold"]["code"],
        other_kind["data"]["releaseLegalHold"]["field"],
    ) == (
        "INVALID_ID",
        "input.id",
    )


async def test_a_hold_leads_to_its_customer(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    customer = (await make_customer(vault, email="c@example.com", given_name="Cleo")).customer_id
    await holds.place_hold(SYSTEM, reason="Claim", customer_id=customer)
    await holds.place_hold(SYSTEM, reason="Tax", category="source_records")
    body = await gql(
        "{ legalHolds { nodes { reason customer { id profile { givenName } } } } }",
        None,
        admin_headers,
    )
    assert sorted(body["data"]["legalHolds"]["nodes"], key=lambda h: h["reason"]) == [
        {
            "reason": "Claim",
            "customer": {"id": gid("Customer", customer), "profile": {"givenName": "Cleo"}},
        },
        {"reason": "Tax", "customer": None},
    ]
    only = await gql(LIST, {"filter": {"customerId": gid("Customer", customer)}}, admin_headers)
    assert [h["reason"] for h in only["data"]["legalHolds"]["nodes"]] == ["Claim"]
    bad = await gql(LIST, {"filter": {"customerId": "nope"}}, admin_headers)
    assert [(e["extensions"]["code"], e["extensions"]["field"]) for e in bad["errors"]] == [
        ("INVALID_ID", "filter.customerId")
    ]


async def test_holds_page_both_ways_with_a_count(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    for number in range(5):
        with clock.frozen_at(clock.now() - timedelta(days=10 - number)):
            await holds.place_hold(SYSTEM, reason=f"Case {number}", category="events")
    first = (await gql(LIST, {"first": 2}, admin_headers))["data"]["legalHolds"]
    assert first["totalCount"] == 5
    assert [h["reason"] for h in first["nodes"]] == ["Case 4", "Case 3"]
    last = (await gql(LIST, {"last": 2}, admin_headers))["data"]["legalHolds"]
    assert [h["reason"] for h in last["nodes"]] == ["Case 1", "Case 0"]
    assert (last["pageInfo"]["hasPreviousPage"], last["pageInfo"]["hasNextPage"]) == (True, False)
    middle = await gql(LIST, {"last": 1, "before": last["pageInfo"]["startCursor"]}, admin_headers)
    assert [h["reason"] for h in middle["data"]["legalHolds"]["nodes"]] == ["Case 2"]


async def test_a_hold_is_a_node_for_oversight_roles(
    gql: GraphQLClient, auth: AuthSettings, admin_headers: dict[str, str]
) -> None:
    hold = await holds.place_hold(SYSTEM, reason="Inquiry", category="notifications")
    officer = bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))
    body = await gql(NODE, {"id": gid("LegalHold", hold.id)}, officer)
    assert body["data"]["node"] == {
        "__typename": "LegalHold",
        "id": gid("LegalHold", hold.id),
        "reason": "Inquiry",
    }
    steward = bearer(await make_api_key(auth, Role.STEWARD))
    refused = await gql(NODE, {"id": gid("LegalHold", hold.id)}, steward)
    assert [e["extensions"]["code"] for e in refused["errors"]] == ["FORBIDDEN"]
    unknown = await gql(NODE, {"id": gid("LegalHold", uuid.uuid4())}, admin_headers)
    assert unknown == {"data": {"node": None}}
    malformed = await gql(NODE, {"id": str(hold.id)}, admin_headers)
    assert [e["extensions"]["code"] for e in malformed["errors"]] == ["INVALID_ID"]


async def test_holds_with_their_customers_cost_the_same_sql_for_1_or_10(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault, sql: StatementRecorder
) -> None:
    for number in range(10):
        customer = (await make_customer(vault, email=f"h{number}@example.com")).customer_id
        await holds.place_hold(SYSTEM, reason=f"Case {number}", customer_id=customer)
    query = (
        "query($n: Int) { legalHolds(first: $n) { totalCount nodes { reason "
        "customer { id profile { email } } } } }"
    )
    await gql("{ viewer { role } }", None, admin_headers)
    counts = {}
    for size in (1, 10):
        with sql.recording():
            body = await gql(query, {"n": size}, admin_headers)
        nodes = body["data"]["legalHolds"]["nodes"]
        assert len(nodes) == size
        assert all(n["customer"]["profile"]["email"] for n in nodes)
        counts[size] = sql.count
    assert counts[1] == counts[10], counts
