"""Reading the 360: lookups, filters, masking per role, audited reads, constant SQL counts."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.core.roles import Role
from cdlm.core.vocabulary import LifecycleStage
from cdlm.customers.events import EventIngest, store_events
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, make_api_key, make_customer, source
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
            body = await gql(FULL, {"id": str(customer_id)}, headers=headers)
        assert "errors" not in body
        counts.append(sql.count)
    data = body["data"]["customer"]
    assert len(data["identities"]) == 1
    big_body = await gql(FULL, {"id": str(big)}, headers=headers)
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
    data = (await gql(query, {"id": str(created.customer_id)}, headers=headers))["data"]["customer"]
    profile = data["profile"]
    if role is Role.ANALYST:
        assert profile == {
            "givenName": "M***",
            "email": "m***@example.com",
            "phone": "+44********56",
            "birthDate": "****-**-**",
        }
        assert {i["value"] for i in data["identities"]} == {"***"}
    elif role is Role.AGENT:
        assert profile["email"] == "masked@example.com"
        assert profile["birthDate"] == "****-**-**"
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
        assert body["data"]["customerByIdentifier"] == {"id": str(created.customer_id)}
    missing = await gql(query, {"k": "EMAIL", "v": "nobody@example.com"}, headers=headers)
    assert missing["data"]["customerByIdentifier"] is None
    malformed = await gql(query, {"k": "PHONE", "v": "abc"}, headers=headers)
    assert malformed["errors"][0]["extensions"]["code"] == "INVALID_FORMAT"
    unknown = await gql(
        "query($id: ID!) { customer(id: $id) { id } }",
        {"id": str(uuid.uuid4())},
        headers=headers,
    )
    assert unknown == {"data": {"customer": None}}


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

    assert await ids({"updatedSince": "2026-06-01T00:00:00+00:00"}) == {str(rich.customer_id)}
    assert await ids({"qualityBelow": 0.6}) == {str(old.customer_id)}
    assert await ids({"sourceSystem": "shop"}) == {str(rich.customer_id)}
    assert await ids({"lifecycleStage": "ACTIVE"}) == {str(rich.customer_id)}
    assert await ids({}) == {str(old.customer_id), str(rich.customer_id)}


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
        {"id": str(created.customer_id)},
        headers=headers,
    )
    assert body["data"] is None
    assert body["errors"][-1]["extensions"]["code"] == "INTERNAL"
    assert "hidden@example.com" not in str(body)
