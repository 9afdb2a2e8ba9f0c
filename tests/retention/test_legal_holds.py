"""Legal holds through the API: placing, listing, releasing, and their failure modes."""

from __future__ import annotations

import uuid
from datetime import timedelta

from cdlm.audit.models import AuditEntry
from cdlm.core import clock
from cdlm.holds.models import LegalHold
from cdlm.holds.service import holds_on
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import make_customer

PLACE = """
mutation($input: PlaceLegalHoldInput!) {
  placeLegalHold(input: $input) {
    __typename
    ... on LegalHoldSaved { hold { id customerId category reason endsAt releasedAt } }
    ... on ValidationError { code field issues { field code } }
    ... on UserError { code field message }
  }
}
"""
RELEASE = """
mutation($id: ID!) {
  releaseLegalHold(input: {id: $id}) {
    __typename
    ... on LegalHoldSaved { hold { releasedAt } }
    ... on UserError { code field message }
  }
}
"""
LIST = "query($all: Boolean!) { legalHolds(includeEnded: $all) { id reason } }"


async def test_a_hold_on_a_customer_is_placed_listed_and_released(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    customer = (await make_customer(vault, email="held@example.com")).customer_id
    answer = await gql(
        PLACE, {"input": {"customerId": str(customer), "reason": "Claim 2026-17"}}, admin_headers
    )
    hold = answer["data"]["placeLegalHold"]["hold"]
    assert hold["customerId"] == str(customer)
    assert [h.reason for h in await holds_on(customer)] == ["Claim 2026-17"]
    listed = await gql(LIST, {"all": False}, admin_headers)
    assert [h["id"] for h in listed["data"]["legalHolds"]] == [hold["id"]]
    released = await gql(RELEASE, {"id": hold["id"]}, admin_headers)
    assert released["data"]["releaseLegalHold"]["hold"]["releasedAt"] is not None
    assert await holds_on(customer) == []
    again = await gql(RELEASE, {"id": hold["id"]}, admin_headers)
    assert again["data"]["releaseLegalHold"]["code"] == "INVALID_STATE"
    assert (await gql(LIST, {"all": False}, admin_headers))["data"]["legalHolds"] == []
    assert len((await gql(LIST, {"all": True}, admin_headers))["data"]["legalHolds"]) == 1
    actions = await AuditEntry.filter(target_type="legal_hold").values_list("action", flat=True)
    assert sorted(actions) == ["retention.hold", "retention.release"]


async def test_a_category_hold_applies_to_everyone_until_its_end(
    gql: GraphQLClient, admin_headers: dict[str, str], vault: Vault
) -> None:
    customer = (await make_customer(vault, email="anyone@example.com")).customer_id
    ends = (clock.now() + timedelta(days=30)).isoformat()
    answer = await gql(
        PLACE,
        {"input": {"category": "events.purchase", "reason": "Tax", "endsAt": ends}},
        admin_headers,
    )
    assert answer["data"]["placeLegalHold"]["hold"]["category"] == "events.purchase"
    assert len(await holds_on(customer)) == 1
    with clock.travel(timedelta(days=31)):
        assert await holds_on(customer) == []


async def test_bad_holds_are_refused_and_nothing_is_stored(
    gql: GraphQLClient, admin_headers: dict[str, str]
) -> None:
    past = (clock.now() - timedelta(days=1)).isoformat()
    cases = [
        ({"reason": "both missing"}, "input"),
        ({"reason": "both", "customerId": str(uuid.uuid4()), "category": "events"}, "input"),
        ({"reason": "odd", "category": "customers.everything"}, "input.category"),
        ({"reason": " ", "category": "events"}, "input.reason"),
        ({"reason": "x" * 501, "category": "events"}, "input.reason"),
        ({"reason": "ended", "category": "events", "endsAt": past}, "input.endsAt"),
        ({"reason": "nobody", "customerId": str(uuid.uuid4())}, "input.customerId"),
        ({"reason": "malformed", "customerId": "nope"}, "input.customerId"),
    ]
    for given, field in cases:
        answer = await gql(PLACE, {"input": given}, admin_headers)
        refused = answer["data"]["placeLegalHold"]
        assert refused["field"] == field, (given, refused)
    assert await LegalHold.all().count() == 0
    unknown = await gql(RELEASE, {"id": str(uuid.uuid4())}, admin_headers)
    assert unknown["data"]["releaseLegalHold"]["code"] == "NOT_FOUND"
