"""Reading the 360: lookups, filters, masking per role, audited reads, constant SQL counts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LifecycleStage
from cdlm.customers.events import EventIngest, store_events
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer, source
from tests.support.audit import read_records, subjects_read
from tests.support.sql_counter import StatementRecorder

FULL = """
query($id: ID!) {
  customer(id: $id) {
    id
    profile { givenName email phone address { city } }
    identities { kind value }
    events(first: 100) { nodes { type properties } }
    lineage { field sourceSystem }
    quality { score invalidValues { field value } }
    sources { sourceSystem }
  }
}
"""
PAGE = """
query($first: Int) {
  customers(first: $first) {
    nodes { id profile { givenName email } identities { kind value } }
  }
}
"""


async def _customer_with(vault: Vault, identities: int, events: int) -> uuid.UUID:
    # One identity: the email. Many: an external id plus one more per extra system.
    first = await make_customer(
        vault,
        external_ids=["crm:base"] if identities > 1 else [],
        email="root@example.com" if identities == 1 else None,
        given_name="Root",
        phone="12",
    )
    for number in range(1, identities):
        system = f"sys{number}"
        await make_customer(vault, external_ids=["crm:base", f"{system}:{number}"])
    items = [
        EventIngest(
            type="page.viewed",
            occurred_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=n),
            source_system="web",
            customer_id=first.customer_id,
            properties={"n": n},
        )
        for n in range(events)
    ]
    if items:
        await store_events(vault, items)
    return first.customer_id


async def test_customer_360_costs_the_same_sql_for_1_or_many_identities_and_events(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings, sql: StatementRecorder
) -> None:
    headers = bearer(await make_api_key(auth, Role.STEWARD))
    small = await _customer_with(vault, identities=1, events=1)
    big = await _customer_with(vault, identities=10, events=50)
    await gql("{ viewer { role } }", headers=headers)  # records the key's last use once
    counts = []
    for customer_id in (small, big, small):
        with sql.recording():
            body = await gql(FULL, {"id": gid("Customer", customer_id)}, headers=headers)
        assert "errors" not in body
        counts.append(sql.count)
    data = body["data"]["customer"]
    assert len(data["identities"]) == 1
    big_body = await gql(FULL, {"id": gid("Customer", big)}, headers=headers)
    assert len(big_body["data"]["customer"]["identities"]) == 10
    assert len(big_body["data"]["customer"]["events"]["nodes"]) == 50
    assert counts[0] == counts[1] == counts[2], counts


async def test_customer_page_costs_the_same_sql_for_1_or_50_customers(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings, sql: StatementRecorder
) -> None:
    headers = bearer(await make_api_key(auth, Role.ADMIN))
    for number in range(50):
        await make_customer(
            vault,
            email=f"c{number}@example.com",
            external_ids=[f"crm:{number + 1000}"],
            given_name=f"Customer{number}",
        )
    await gql("{ viewer { role } }", headers=headers)  # records the key's last use once
    counts = {}
    for size in (1, 50):
        with sql.recording():
            body = await gql(PAGE, {"first": size}, headers=headers)
        assert len(body["data"]["customers"]["nodes"]) == size
        nodes = body["data"]["customers"]["nodes"]
        assert [len(n["identities"]) for n in nodes] == [2] * size, nodes
        counts[size] = sql.count
    assert counts[1] == counts[50], counts
    # ...and every listed customer's read is audited, with the fields selected.
    # One record per request: 1 customer, then 50.
    assert await subjects_read("customer.read") == 51
    one = (await read_records("customer.read"))[0]
    assert one.fields_touched == ["email", "given_name", "identities"]


@pytest.mark.parametrize("role", [Role.ADMIN, Role.AGENT, Role.ANALYST])
async def test_profile_is_masked_by_role(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings, role: Role
) -> None:
    created = await make_customer(
        vault,
        email="masked@example.com",
        phone="+44 7911 123456",
        given_name="Mira",
        family_name="Mask",
        birth_date="1990-02-03",
    )
    headers = bearer(await make_api_key(auth, role))
    query = (
        "query($id: ID!) { customer(id: $id) "
        "{ profile { givenName email phone birthDate } identities { value } } }"
    )
    variables = {"id": gid("Customer", created.customer_id)}
    data = (await gql(query, variables, headers=headers))["data"]["customer"]
    profile = data["profile"]
    # A Date has no masked form: roles that see the birth date masked get null.
    if role is Role.ANALYST:
        assert profile == {
            "givenName": "M***",
            "email": "m***@example.com",
            "phone": "+44********56",
            "birthDate": None,
        }
        assert {i["value"] for i in data["identities"]} == {"***"}
    elif role is Role.AGENT:
        assert profile["email"] == "masked@example.com"
        assert profile["birthDate"] is None
    else:
        assert profile["birthDate"] == "1990-02-03"


async def test_lookup_by_identifier(gql: GraphQLClient, vault: Vault, auth: AuthSettings) -> None:
    created = await make_customer(vault, email="look@example.com", external_ids=["crm:55"])
    headers = bearer(await make_api_key(auth, Role.AGENT))
    query = (
        "query($k: IdentifierKind!, $v: String!) "
        "{ customerByIdentifier(kind: $k, value: $v) { id } }"
    )
    for kind, value in [("EMAIL", " LOOK@example.com "), ("EXTERNAL_ID", "CRM:55")]:
        body = await gql(query, {"k": kind, "v": value}, headers=headers)
        assert body["data"]["customerByIdentifier"] == {"id": gid("Customer", created.customer_id)}
    missing = await gql(query, {"k": "EMAIL", "v": "nobody@example.com"}, headers=headers)
    assert missing["data"]["customerByIdentifier"] is None
    malformed = await gql(query, {"k": "PHONE", "v": "abc"}, headers=headers)
    assert malformed["errors"][0]["extensions"]["code"] == "INVALID_FORMAT"
    by_id = "query($id: ID!) { customer(id: $id) { id } }"
    unknown = await gql(by_id, {"id": gid("Customer", uuid.uuid4())}, headers=headers)
    assert unknown == {"data": {"customer": None}}
    # A bare UUID, or the id of another type, is not a customer's global id.
    for bad in (str(created.customer_id), gid("Event", created.customer_id), "%%%"):
        refused = await gql(by_id, {"id": bad}, headers=headers)
        assert refused["data"] == {"customer": None}
        (error,) = refused["errors"]
        assert (error["extensions"]["code"], error["extensions"]["field"]) == ("INVALID_ID", "id")


async def test_customer_list_filters(gql: GraphQLClient, vault: Vault, auth: AuthSettings) -> None:
    headers = bearer(await make_api_key(auth, Role.ANALYST))
    with clock.frozen_at(datetime(2026, 1, 1, tzinfo=UTC)):
        old = await make_customer(vault, email="old@example.com")
    rich = await make_customer(
        vault,
        email="rich@example.com",
        phone="+44 7911 123456",
        given_name="Rich",
        family_name="Full",
        birth_date="1980-01-01",
        address_line1="1 High St",
        city="Leeds",
        postal_code="LS1 1AA",
        country="GB",
        origin=source("shop"),
        stage=LifecycleStage.ACTIVE,
    )
    query = """
    query($f: CustomerFilter) { customers(filter: $f) { nodes { id lifecycleStage } } }
    """

    async def ids(criteria: dict[str, object]) -> set[str]:
        body = await gql(query, {"f": criteria}, headers=headers)
        return {n["id"] for n in body["data"]["customers"]["nodes"]}

    old_id, rich_id = gid("Customer", old.customer_id), gid("Customer", rich.customer_id)
    assert await ids({"updatedSince": "2026-06-01T00:00:00+00:00"}) == {rich_id}
    assert await ids({"qualityBelow": 0.6}) == {old_id}
    assert await ids({"sourceSystem": "shop"}) == {rich_id}
    assert await ids({"lifecycleStage": "ACTIVE"}) == {rich_id}
    assert await ids({}) == {old_id, rich_id}


async def test_a_read_that_cannot_be_audited_returns_no_data(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cdlm.audit import reads

    created = await make_customer(vault, email="hidden@example.com")
    headers = bearer(await make_api_key(auth, Role.STEWARD))

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("audit table unavailable")

    monkeypatch.setattr(reads, "record", broken)
    body = await gql(
        "query($id: ID!) { customer(id: $id) { profile { email } } }",
        {"id": gid("Customer", created.customer_id)},
        headers=headers,
    )
    assert body["data"] is None
    assert body["errors"][-1]["extensions"]["code"] == "INTERNAL"
    assert "hidden@example.com" not in str(body)


PAGED = """
query($first: Int, $after: String, $last: Int, $before: String) {
  customers(first: $first, after: $after, last: $last, before: $before) {
    edges { cursor node { id } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


async def test_customers_page_backwards_as_well_as_forwards(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    headers = bearer(await make_api_key(auth, Role.ANALYST))
    made = []
    for n in range(5):
        with clock.frozen_at(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=n)):
            made.append(await make_customer(vault, email=f"page{n}@example.com"))
    newest_first = [gid("Customer", m.customer_id) for m in reversed(made)]

    async def page(**arguments: object) -> dict[str, Any]:
        body = await gql(PAGED, arguments, headers=headers)
        assert "errors" not in body, body
        result: dict[str, Any] = body["data"]["customers"]
        return result

    def ids(result: dict[str, Any]) -> list[str]:
        return [edge["node"]["id"] for edge in result["edges"]]

    first = await page(first=2)
    assert ids(first) == newest_first[:2]
    assert (first["pageInfo"]["hasPreviousPage"], first["pageInfo"]["hasNextPage"]) == (
        False,
        True,
    )
    # The end of the list, counted back: the two oldest, still newest first.
    end = await page(last=2)
    assert ids(end) == newest_first[3:]
    assert (end["pageInfo"]["hasPreviousPage"], end["pageInfo"]["hasNextPage"]) == (True, False)
    assert end["pageInfo"]["startCursor"] == end["edges"][0]["cursor"]
    assert end["pageInfo"]["endCursor"] == end["edges"][-1]["cursor"]
    # Walking back with before: startCursor until the beginning gives the whole list.
    seen = ids(end)
    before = end["pageInfo"]["startCursor"]
    while True:
        earlier = await page(last=2, before=before)
        assert earlier["pageInfo"]["hasNextPage"] is True
        seen = ids(earlier) + seen
        if not earlier["pageInfo"]["hasPreviousPage"]:
            break
        before = earlier["pageInfo"]["startCursor"]
    assert seen == newest_first
    assert ids(earlier) == newest_first[:1]
    # A page bounded on both sides.
    between = await page(
        first=10, after=first["pageInfo"]["endCursor"], before=end["pageInfo"]["startCursor"]
    )
    assert ids(between) == newest_first[2:3]
    assert between["pageInfo"]["hasPreviousPage"] is True


async def test_a_cursor_of_another_list_or_both_directions_are_refused(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    headers = bearer(await make_api_key(auth, Role.ADMIN))
    made = await make_customer(vault, email="cursor@example.com")
    await store_events(
        vault,
        [
            EventIngest(
                type="page.viewed",
                occurred_at=datetime(2026, 1, 1, tzinfo=UTC),
                source_system="web",
                customer_id=made.customer_id,
            )
        ],
    )
    events = await gql(
        "query($id: ID!) { customer(id: $id) { events { pageInfo { endCursor } } } }",
        {"id": gid("Customer", made.customer_id)},
        headers=headers,
    )
    event_cursor = events["data"]["customer"]["events"]["pageInfo"]["endCursor"]
    listed = await gql(PAGED, {"first": 1}, headers=headers)
    customer_cursor = listed["data"]["customers"]["pageInfo"]["endCursor"]
    for arguments, field in [
        ({"first": 1, "after": event_cursor}, "after"),
        ({"last": 1, "before": event_cursor}, "before"),
        ({"first": 1, "last": 1}, "last"),
        ({"last": 0}, "last"),
        ({"last": 101}, "last"),
    ]:
        body = await gql(PAGED, arguments, headers=headers)
        assert body["data"] is None, arguments
        assert body["errors"][0]["extensions"]["field"] == field, arguments
    refused = await gql(PAGED, {"first": 1, "after": event_cursor}, headers=headers)
    assert refused["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
    # ...and a customer-list cursor is no cursor of a customer's events.
    for argument in ("after", "before"):
        body = await gql(
            f"query($id: ID!, $c: String) {{ customer(id: $id) {{ events({argument}: $c"
            f"{', last: 1' if argument == 'before' else ''}) {{ nodes {{ id }} }} }} }}",
            {"id": gid("Customer", made.customer_id), "c": customer_cursor},
            headers=headers,
        )
        (error,) = body["errors"]
        assert (error["extensions"]["code"], error["extensions"]["field"]) == (
            "INVALID_CURSOR",
            argument,
        )


@pytest.mark.parametrize(
    ("moment", "code"),
    [
        ("2026-06-01T00:00:00", "INVALID_FORMAT"),  # no time zone: ambiguous
        ("0001-01-01T00:00:00+14:00", "INVALID_FORMAT"),  # before year 1 once in UTC
        ("9999-12-31T23:59:59-14:00", "INVALID_FORMAT"),  # after year 9999 once in UTC
        ("0001-01-01T00:00:00Z", "INVALID_FORMAT"),  # the database driver's -infinity
        ("9999-12-31T23:59:59.999999Z", "INVALID_FORMAT"),  # and its infinity
    ],
)
async def test_a_filter_moment_without_zone_or_out_of_range_is_refused(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings, moment: str, code: str
) -> None:
    # Regression: out of range, it reached the database driver and came back INTERNAL.
    headers = bearer(await make_api_key(auth, Role.ADMIN))
    created = await make_customer(vault, email="moments@example.com")
    listed = await gql(
        "query($f: CustomerFilter) { customers(filter: $f) { nodes { id } } }",
        {"f": {"updatedSince": moment}},
        headers=headers,
    )
    (error,) = listed["errors"]
    assert (error["extensions"]["code"], error["extensions"]["field"]) == (
        code,
        "filter.updatedSince",
    )
    for name in ("occurredFrom", "occurredTo"):
        events = await gql(
            "query($id: ID!, $f: EventFilter) { customer(id: $id) "
            "{ events(filter: $f) { nodes { id } } } }",
            {"id": gid("Customer", created.customer_id), "f": {name: moment}},
            headers=headers,
        )
        (error,) = events["errors"]
        assert (error["extensions"]["code"], error["extensions"]["field"]) == (
            code,
            f"filter.{name}",
        )


async def test_a_merged_profiles_id_answers_with_the_survivor_and_is_listed_as_merged(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    from cdlm.core.principal import SYSTEM
    from cdlm.matching import merge as merging

    survivor = await make_customer(vault, email="stays@example.com")
    absorbed = await make_customer(vault, email="goes@example.com")
    await merging.merge(
        SYSTEM,
        vault,
        merging.MergeInput(survivor.customer_id, absorbed.customer_id, "The same person."),
    )
    headers = bearer(await make_api_key(auth, Role.ANALYST))
    body = await gql(
        "query($id: ID!) { customer(id: $id) { id mergedFrom } }",
        {"id": gid("Customer", absorbed.customer_id)},
        headers=headers,
    )
    assert body["data"]["customer"] == {
        "id": gid("Customer", survivor.customer_id),
        "mergedFrom": [gid("Customer", absorbed.customer_id)],
    }
    # Agents work on one customer at a time and do not see how profiles were merged.
    agent = bearer(await make_api_key(auth, Role.AGENT))
    denied = await gql(
        "query($id: ID!) { customer(id: $id) { mergedFrom } }",
        {"id": gid("Customer", survivor.customer_id)},
        headers=agent,
    )
    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
