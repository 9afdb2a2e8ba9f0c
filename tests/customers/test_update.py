"""Rectification with updateCustomer: lineage, clearing, refusals, identity conflicts, audit."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cdlm.audit.models import AuditEntry
from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import Role
from cdlm.customers.models import Customer, SourceRecord
from cdlm.identity.models import Identity
from cdlm.quality.models import InvalidValue
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer

UPDATE = """
mutation($input: UpdateCustomerInput!) {
  updateCustomer(input: $input) {
    __typename
    ... on CustomerUpdated {
      customer { lifecycleStage profile { givenName email phone address { city } }
                 lineage { field sourceSystem sourceKind cleared } identities { kind value } }
    }
    ... on UserError { message code field }
    ... on ValidationError { issues { field code } }
  }
}
"""


@pytest.fixture
async def agent(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.AGENT))


async def update(
    gql: GraphQLClient, headers: dict[str, str], data: dict[str, Any]
) -> dict[str, Any]:
    body = await gql(UPDATE, {"input": data}, headers=headers)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["updateCustomer"]
    return result


async def test_rectification_wins_records_lineage_and_is_audited(
    gql: GraphQLClient, vault: Vault, agent: dict[str, str]
) -> None:
    created = await make_customer(
        vault, email="fix@example.com", given_name="Jon", city="Leeds", phone="12"
    )
    result = await update(
        gql,
        agent,
        {
            "id": gid("Customer", created.customer_id),
            "changes": {"givenName": "John", "phone": "+44 7911 123456", "address": {"city": None}},
            "lifecycleStage": "ACTIVE",
        },
    )
    customer = result["customer"]
    assert customer["profile"] == {
        "givenName": "John",
        "email": "fix@example.com",
        "phone": "+447911123456",
        "address": {"city": None},
    }
    lineage = {e["field"]: e for e in customer["lineage"]}
    assert lineage["profile.givenName"]["sourceSystem"] == "cdlm-staff"
    assert lineage["profile.givenName"]["sourceKind"] == "STAFF"
    assert lineage["profile.address.city"]["cleared"] is True
    assert lineage["profile.email"]["sourceSystem"] == "crm"
    assert lineage["profile.email"]["sourceKind"] == "CRM"
    assert customer["lifecycleStage"] == "ACTIVE"
    assert {"kind": "PHONE", "value": "+447911123456"} in customer["identities"]
    # The refused phone from the first source is resolved by the valid one.
    assert (
        await InvalidValue.filter(customer_id=created.customer_id, resolved_at__isnull=True).count()
        == 0
    )
    assert (
        await SourceRecord.filter(customer_id=created.customer_id, outcome="rectified").count() == 1
    )
    entry = await AuditEntry.get(action="customer.rectify")
    assert entry.fields_touched == ["city", "given_name", "phone"]
    # A later CRM record does not undo the staff correction.
    await make_customer(vault, email="fix@example.com", given_name="Jonathan")
    stored = await Customer.get(id=created.customer_id)
    key = await vault.customer_key(stored.id)
    assert vault.open(key, stored.id, "profile", stored.profile_sealed)["given_name"] == "John"


async def test_invalid_changes_are_refused_and_nothing_is_written(
    gql: GraphQLClient, vault: Vault, agent: dict[str, str]
) -> None:
    created = await make_customer(vault, email="keep@example.com", given_name="Keep")
    before = await Customer.get(id=created.customer_id)
    result = await update(
        gql,
        agent,
        {
            "id": gid("Customer", created.customer_id),
            "changes": {"email": "broken", "birthDate": "3000-01-01", "givenName": "Ok"},
        },
    )
    assert result["__typename"] == "ValidationError"
    assert sorted(i["field"] for i in result["issues"]) == [
        "input.changes.birthDate",
        "input.changes.email",
    ]
    after = await Customer.get(id=created.customer_id)
    assert after.profile_sealed == before.profile_sealed
    assert await AuditEntry.filter(action="customer.rectify").count() == 0


async def test_an_email_of_another_customer_is_refused(
    gql: GraphQLClient, vault: Vault, agent: dict[str, str]
) -> None:
    first = await make_customer(vault, email="one@example.com")
    await make_customer(vault, email="two@example.com")
    result = await update(
        gql,
        agent,
        {"id": gid("Customer", first.customer_id), "changes": {"email": "two@example.com"}},
    )
    assert result["__typename"] == "ValidationError"
    assert result["issues"] == [{"field": "input.changes.email", "code": "IDENTITY_CONFLICT"}]
    assert await Identity.filter(customer_id=first.customer_id).count() == 1


async def test_unknown_customer_empty_change_and_wrong_role(
    gql: GraphQLClient, vault: Vault, agent: dict[str, str], auth: AuthSettings
) -> None:
    unknown = await update(
        gql, agent, {"id": gid("Customer", uuid.uuid4()), "changes": {"givenName": "X"}}
    )
    assert (unknown["__typename"], unknown["field"]) == ("NotFoundError", "input.id")
    created = await make_customer(vault, email="n@example.com")
    empty = await update(gql, agent, {"id": gid("Customer", created.customer_id)})
    assert (empty["__typename"], empty["field"]) == ("ValidationError", "input")
    for malformed in (str(created.customer_id), gid("Event", created.customer_id)):
        refused = await update(gql, agent, {"id": malformed, "changes": {"givenName": "X"}})
        assert (refused["__typename"], refused["code"], refused["field"]) == (
            "ValidationError",
            "INVALID_ID",
            "input.id",
        )
    analyst = bearer(await make_api_key(auth, Role.ANALYST))
    body = await gql(
        UPDATE,
        {"input": {"id": gid("Customer", created.customer_id), "changes": {"givenName": "X"}}},
        headers=analyst,
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_data_quality_report(gql: GraphQLClient, vault: Vault, auth: AuthSettings) -> None:
    await make_customer(vault, email="q1@example.com", given_name="Q", phone="bad")
    await make_customer(vault, email="q2@example.com", country="Narnia")
    await make_customer(
        vault,
        email="q3@example.com",
        given_name="Q",
        family_name="Three",
        phone="+44 7911 123456",
        birth_date="1990-01-01",
        address_line1="1 Road",
        city="York",
        postal_code="YO1 7HH",
        country="GB",
    )
    headers = bearer(await make_api_key(auth, Role.ANALYST))
    body = await gql(
        """{ dataQualityReport { customers averageScore
             scoreBuckets { fromScore toScore customers }
             fieldPresence { field customers share }
             invalidValues { field code open }
             bySource { sourceSystem customers averageScore } } }""",
        headers=headers,
    )
    report = body["data"]["dataQualityReport"]
    assert report["customers"] == 3
    assert sum(b["customers"] for b in report["scoreBuckets"]) == 3
    presence = {f["field"]: f for f in report["fieldPresence"]}
    assert presence["profile.email"] == {"field": "profile.email", "customers": 3, "share": 1.0}
    assert presence["profile.givenName"]["customers"] == 2
    assert presence["profile.address.postalCode"]["customers"] == 1
    assert sorted((i["field"], i["code"], i["open"]) for i in report["invalidValues"]) == [
        ("profile.address.country", "UNKNOWN_CODE", 1),
        ("profile.phone", "INVALID_FORMAT", 1),
    ]
    assert report["bySource"] == [
        {"sourceSystem": "crm", "customers": 3, "averageScore": report["averageScore"]}
    ]
    assert "q1@example.com" not in str(body)


STATE = """
query($id: ID!) {
  customer(id: $id) {
    lifecycleStage
    profile { givenName familyName email phone birthDate
              address { line1 city postalCode country } }
    identities { kind value }
    lineage { field cleared }
  }
}
"""


async def test_omitted_fields_are_kept_and_null_clears(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    steward = bearer(await make_api_key(auth, Role.STEWARD))
    created = await make_customer(
        vault,
        given_name="Ada",
        family_name="Lovelace",
        email="ada@example.com",
        phone="+44 7911 123456",
        birth_date="1990-02-03",
        address_line1="1 High St",
        city="Leeds",
        postal_code="LS1 1AA",
        country="GB",
    )
    customer_id = gid("Customer", created.customer_id)

    async def state() -> dict[str, Any]:
        body = await gql(STATE, {"id": customer_id}, headers=steward)
        found: dict[str, Any] = body["data"]["customer"]
        return found

    before = await state()
    # Omitted: kept. Only the stage changes.
    staged = await update(gql, steward, {"id": customer_id, "lifecycleStage": "ACTIVE"})
    assert staged["__typename"] == "CustomerUpdated"
    after = await state()
    assert after["profile"] == before["profile"]
    assert after["lifecycleStage"] == "ACTIVE"
    # Null clears that field only; the stage omitted is kept.
    await update(gql, steward, {"id": customer_id, "changes": {"familyName": None}})
    after = await state()
    assert after["profile"] == {**before["profile"], "familyName": None}
    assert after["lifecycleStage"] == "ACTIVE"
    lineage = {e["field"]: e["cleared"] for e in after["lineage"]}
    assert lineage["profile.familyName"] is True
    assert lineage["profile.givenName"] is False
    # A null inside the address clears that part; the other parts are kept.
    await update(gql, steward, {"id": customer_id, "changes": {"address": {"postalCode": None}}})
    address = (await state())["profile"]["address"]
    assert address == {"line1": "1 High St", "city": "Leeds", "postalCode": None, "country": "GB"}
    # A null address clears every part of it.
    await update(gql, steward, {"id": customer_id, "changes": {"address": None}})
    after = await state()
    assert after["profile"]["address"] == dict.fromkeys(address)
    assert after["profile"]["givenName"] == "Ada"
    # A cleared phone was wrong: it stops identifying the customer. A birth date clears too.
    await update(gql, steward, {"id": customer_id, "changes": {"phone": None, "birthDate": None}})
    after = await state()
    assert (after["profile"]["phone"], after["profile"]["birthDate"]) == (None, None)
    assert after["identities"] == [{"kind": "EMAIL", "value": "ada@example.com"}]


async def test_what_cannot_be_cleared_is_refused_and_nothing_is_written(
    gql: GraphQLClient, vault: Vault, agent: dict[str, str]
) -> None:
    created = await make_customer(vault, email="stage@example.com", given_name="Stay")
    customer_id = gid("Customer", created.customer_id)
    stored = await Customer.get(id=created.customer_id)
    for data, field in [
        ({"lifecycleStage": None, "changes": {"givenName": "Changed"}}, "input.lifecycleStage"),
        ({"changes": None, "lifecycleStage": "ACTIVE"}, "input.changes"),
    ]:
        refused = await update(gql, agent, {"id": customer_id, **data})
        assert (refused["__typename"], refused["field"]) == ("ValidationError", field)
        assert "leave it out" in refused["message"]
    after = await Customer.get(id=created.customer_id)
    assert (after.profile_sealed, after.lifecycle_stage) == (
        stored.profile_sealed,
        stored.lifecycle_stage,
    )
    assert await AuditEntry.filter(action="customer.rectify").count() == 0
