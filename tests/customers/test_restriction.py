"""liftCustomerRestriction: each failure of its result union, the payload, roles and audit."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from cdlm.audit.models import AuditEntry
from cdlm.auth.settings import AuthSettings
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.core.roles import Role
from cdlm.customers import rights
from cdlm.customers.models import Customer
from cdlm.matching import merge as merging
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer

LIFT = """
mutation($input: LiftCustomerRestrictionInput!) {
  liftCustomerRestriction(input: $input) {
    __typename
    ... on CustomerRestrictionLifted { customer { id restrictedAt profile { email } } }
    ... on UserError { message code field }
  }
}
"""


@pytest.fixture
async def officer(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.PRIVACY_OFFICER))


async def lift(
    gql: GraphQLClient, headers: dict[str, str], customer_id: str, reason: str = "Told them."
) -> dict[str, Any]:
    body = await gql(LIFT, {"input": {"customerId": customer_id, "reason": reason}}, headers)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["liftCustomerRestriction"]
    return result


async def test_a_restricted_customer_is_lifted_shown_and_audited(
    gql: GraphQLClient, vault: Vault, officer: dict[str, str]
) -> None:
    created = await make_customer(vault, email="lift@example.com")
    await rights.restrict(created.customer_id)
    result = await lift(gql, officer, gid("Customer", created.customer_id))
    assert result == {
        "__typename": "CustomerRestrictionLifted",
        "customer": {
            "id": gid("Customer", created.customer_id),
            "restrictedAt": None,
            "profile": {"email": "lift@example.com"},
        },
    }
    assert (await Customer.get(id=created.customer_id)).restricted_at is None
    entry = await AuditEntry.get(action="customer.lift_restriction")
    assert entry.target_id == str(created.customer_id)


async def test_each_failure_names_its_field_and_changes_nothing(
    gql: GraphQLClient, vault: Vault, officer: dict[str, str]
) -> None:
    restricted = await make_customer(vault, email="kept@example.com")
    await rights.restrict(restricted.customer_id)
    free = await make_customer(vault, email="free@example.com")
    erased = await make_customer(vault, email="erased@example.com")
    await rights.restrict(erased.customer_id)
    await Customer.filter(id=erased.customer_id).update(erased_at=clock.now())
    cases = [
        (str(restricted.customer_id), "Told.", "ValidationError", "INVALID_ID", "input.customerId"),
        (
            gid("Event", restricted.customer_id),
            "Told.",
            "ValidationError",
            "INVALID_ID",
            "input.customerId",
        ),
        (gid("Customer", restricted.customer_id), " ", "ValidationError", None, "input.reason"),
        (
            gid("Customer", restricted.customer_id),
            "x" * 501,
            "ValidationError",
            None,
            "input.reason",
        ),
        (gid("Customer", uuid.uuid4()), "Told.", "NotFoundError", "NOT_FOUND", "input.customerId"),
        (
            gid("Customer", erased.customer_id),
            "Told.",
            "NotFoundError",
            "NOT_FOUND",
            "input.customerId",
        ),
        (
            gid("Customer", free.customer_id),
            "Told.",
            "InvalidStateError",
            "INVALID_STATE",
            "input.customerId",
        ),
    ]
    for customer_id, reason, typename, code, field in cases:
        result = await lift(gql, officer, customer_id, reason)
        assert (result["__typename"], result["field"]) == (typename, field), result
        if code is not None:
            assert result["code"] == code
    assert (await Customer.get(id=restricted.customer_id)).restricted_at is not None
    assert await AuditEntry.filter(action="customer.lift_restriction").count() == 0


async def test_a_merged_id_lifts_the_customer_it_answers_with(
    gql: GraphQLClient, vault: Vault, officer: dict[str, str]
) -> None:
    # Regression: the absorbed profile's own row was looked at (never restricted), so lifting
    # through an id that shows a restricted customer answered INVALID_STATE.
    survivor = await make_customer(vault, email="survivor@example.com")
    absorbed = await make_customer(vault, email="absorbed@example.com")
    await merging.merge(
        SYSTEM,
        vault,
        merging.MergeInput(survivor.customer_id, absorbed.customer_id, "The same person."),
    )
    await rights.restrict(survivor.customer_id)
    result = await lift(gql, officer, gid("Customer", absorbed.customer_id))
    assert result["__typename"] == "CustomerRestrictionLifted", result
    assert result["customer"]["id"] == gid("Customer", survivor.customer_id)
    assert result["customer"]["restrictedAt"] is None
    assert (await Customer.get(id=survivor.customer_id)).restricted_at is None


@pytest.mark.parametrize("role", [Role.STEWARD, Role.AGENT, Role.ANALYST, Role.INGEST])
async def test_only_admins_and_privacy_officers_may_lift(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings, role: Role
) -> None:
    created = await make_customer(vault, email="roles@example.com")
    await rights.restrict(created.customer_id)
    headers = bearer(await make_api_key(auth, role))
    body = await gql(
        LIFT,
        {"input": {"customerId": gid("Customer", created.customer_id), "reason": "Told."}},
        headers,
    )
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert (await Customer.get(id=created.customer_id)).restricted_at is not None
