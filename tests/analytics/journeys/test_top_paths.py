"""topPaths: per customer's first start in range, consecutive repeats collapsed, counts and
shares, who is left out, validation and roles."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from cdlm.core import clock
from cdlm.customers.models import Customer
from cdlm.vault.service import Vault
from tests.analytics.journeys.conftest import T0, happened, person
from tests.conftest import GraphQLClient

TOP_PATHS = """
query($input: TopPathsInput!) {
  topPaths(input: $input) {
    __typename
    ... on TopPaths { started paths { eventTypes customers share } }
    ... on ValidationError { issues { field code } }
  }
}
"""


def paths_input(**more: Any) -> dict[str, Any]:
    return {
        "startingWith": "view",
        "from": T0.isoformat(),
        "to": (T0 + timedelta(days=10)).isoformat(),
        **more,
    }


async def ask(gql: GraphQLClient, headers: dict[str, str], given: dict[str, Any]) -> Any:
    body = await gql(TOP_PATHS, {"input": given}, headers)
    assert "errors" not in body, body
    return body["data"]["topPaths"]


def path(types: str, customers: int, share: float) -> Any:
    return {"eventTypes": types.split(), "customers": customers, "share": pytest.approx(share)}


@pytest.fixture
async def population(vault: Vault) -> None:
    plan: list[list[tuple[str, float]]] = [
        [("view", 1), ("view", 2), ("cart", 3), ("buy", 4)],  # a repeated view collapses
        [("view", 1), ("cart", 2), ("cart", 3), ("buy", 4)],  # so does a repeated cart
        [("cart", 0), ("view", 1), ("buy", 2), ("view", 3)],  # a type may come back
        [("view", 1)],  # nothing after the start
        [("view", -2), ("cart", -1), ("view", 5), ("cart", 6)],  # starts in the range
        [("view", 1), ("cart", 2), ("buy", 300)],  # the buy is after the range
        [("cart", 1), ("buy", 2)],  # never starts
    ]
    for items in plan:
        await happened(vault, await person(vault), *items)
    restricted = await person(vault)
    await happened(vault, restricted, ("view", 1), ("buy", 2), ("cart", 3))
    await Customer.filter(id=restricted).update(restricted_at=clock.now())


async def test_paths_are_counted_once_per_customer(
    gql: GraphQLClient, analyst: dict[str, str], population: None
) -> None:
    found = await ask(gql, analyst, paths_input())
    assert found["started"] == 6
    # By customers, then by the types (a shorter path before its longer ones).
    assert found["paths"] == [
        path("view cart", 2, 2 / 6),
        path("view cart buy", 2, 2 / 6),
        path("view", 1, 1 / 6),
        path("view buy view", 1, 1 / 6),
    ]
    shorter = await ask(gql, analyst, paths_input(length=2))
    assert shorter["paths"] == [
        path("view cart", 4, 4 / 6),
        path("view", 1, 1 / 6),
        path("view buy", 1, 1 / 6),
    ]
    top = await ask(gql, analyst, paths_input(first=1))
    assert (top["started"], top["paths"]) == (6, [path("view cart", 2, 2 / 6)])
    carts = await ask(gql, analyst, paths_input(startingWith="cart", length=2))
    # Six customers have a cart in the range (one at exactly `from`, one only at 6 h).
    assert carts["started"] == 6
    assert carts["paths"] == [
        path("cart buy", 3, 3 / 6),
        path("cart", 2, 2 / 6),
        path("cart view", 1, 1 / 6),
    ]


async def test_each_validation_error(
    gql: GraphQLClient, analyst: dict[str, str], population: None
) -> None:
    async def problems(**given: Any) -> set[tuple[str, str]]:
        found = await ask(gql, analyst, paths_input(**given))
        assert found["__typename"] == "ValidationError", found
        return {(i["field"], i["code"]) for i in found["issues"]}

    assert await problems(startingWith="nope") == {("input.startingWith", "UNKNOWN_CODE")}
    assert await problems(length=1) == {("input.length", "VALIDATION")}
    assert await problems(length=7) == {("input.length", "VALIDATION")}
    assert await problems(first=0) == {("input.first", "VALIDATION")}
    assert await problems(first=51) == {("input.first", "VALIDATION")}
    assert await problems(to=T0.isoformat()) == {("input.to", "VALIDATION")}
    assert await problems(startingWith="nope", length=9, first=99) == {
        ("input.startingWith", "UNKNOWN_CODE"),
        ("input.length", "VALIDATION"),
        ("input.first", "VALIDATION"),
    }


async def test_roles(
    gql: GraphQLClient, agent: dict[str, str], admin_headers: dict[str, str]
) -> None:
    body = await gql(TOP_PATHS, {"input": paths_input()})
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    body = await gql(TOP_PATHS, {"input": paths_input()}, agent)
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    # Allowed; without any stored event the type is unknown.
    found = await ask(gql, admin_headers, paths_input())
    assert found["issues"] == [{"field": "input.startingWith", "code": "UNKNOWN_CODE"}]
