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
from tests.factories import bearer, make_api_key, make_customer

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
            "id": str(created.customer_id),
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
    assert lineage["given_name"]["sourceSystem"] == "cdlm-staff"
    assert lineage["given_name"]["sourceKind"] == "staff"
    assert lineage["city"]["cleared"] is True
    assert lineage["email"]["sourceSystem"] == "crm"
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
            "id": str(created.customer_id),
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
        gql, agent, {"id": str(first.customer_id), "changes": {"email": "two@example.com"}}
    )
    assert result["__typename"] == "ValidationError"
    assert result["issues"] == [{"field": "input.changes.email", "code": "IDENTITY_CONFLICT"}]
    assert await Identity.filter(customer_id=first.customer_id).count() == 1


async def test_unknown_customer_empty_change_and_wrong_role(
    gql: GraphQLClient, vault: Vault, agent: dict[str, str], auth: AuthSettings
) -> None:
    unknown = await update(gql, agent, {"id": str(uuid.uuid4()), "changes": {"givenName": "X"}})
    assert unknown["__typename"] == "NotFoundError"
    created = await make_customer(vault, email="n@example.com")
    empty = await update(gql, agent, {"id": str(created.customer_id)})
    assert empty["__typename"] == "ValidationError"
    analyst = bearer(await make_api_key(auth, Role.ANALYST))
    body = await gql(
        UPDATE,
        {"input": {"id": str(created.customer_id), "changes": {"givenName": "X"}}},
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
    assert presence["email"] == {"field": "email", "customers": 3, "share": 1.0}
    assert presence["given_name"]["customers"] == 2
    assert presence["postal_code"]["customers"] == 1
    assert sorted((i["field"], i["code"], i["open"]) for i in report["invalidValues"]) == [
        ("country", "UNKNOWN_CODE", 1),
        ("phone", "INVALID_FORMAT", 1),
    ]
    assert report["bySource"] == [
        {"sourceSystem": "crm", "customers": 3, "averageScore": report["averageScore"]}
    ]
    assert "q1@example.com" not in str(body)
