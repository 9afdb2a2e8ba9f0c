"""funnel: exact per-step counts, conversions and medians on a hand-built population, who is
left out, segments, every validation error and the roles."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest

from cdlm.analytics.journeys import service
from cdlm.analytics.segments import service as segments
from cdlm.core import clock
from cdlm.core.principal import SYSTEM
from cdlm.customers.models import Customer, CustomerAttributes
from cdlm.vault.service import Vault
from tests.analytics.journeys.conftest import T0, happened, person
from tests.conftest import GraphQLClient
from tests.factories import gid
from tests.support.sql_counter import StatementRecorder

FUNNEL = """
query($input: FunnelInput!) {
  funnel(input: $input) {
    __typename
    ... on Funnel {
      entered
      steps { eventType customers conversion overall medianSecondsFromPrevious }
    }
    ... on UserError { code field message }
    ... on ValidationError { issues { field code } }
  }
}
"""
HOUR = 3600.0


def funnel_input(*steps: str, within: str = "P1D", **more: Any) -> dict[str, Any]:
    return {
        "steps": list(steps),
        "within": within,
        "from": T0.isoformat(),
        "to": (T0 + timedelta(days=10)).isoformat(),
        **more,
    }


async def ask(gql: GraphQLClient, headers: dict[str, str], given: dict[str, Any]) -> Any:
    body = await gql(FUNNEL, {"input": given}, headers)
    assert "errors" not in body, body
    return body["data"]["funnel"]


def step(kind: str, customers: int, conversion: Any, overall: float, median: Any) -> Any:
    return {
        "eventType": kind,
        "customers": customers,
        "conversion": conversion,
        "overall": overall,
        "medianSecondsFromPrevious": median,
    }


@pytest.fixture
async def population(vault: Vault) -> dict[str, uuid.UUID]:
    """Customers with hand-placed events (hours after T0), see each line."""
    plan: dict[str, list[tuple[str, float]]] = {
        # every step: cart 1 h after the entry, buy 3 h after the cart
        "a": [("view", 1), ("cart", 2), ("buy", 5)],
        # a second view; the cart 3 h after the entry (the FIRST view in range)
        "b": [("view", 1), ("view", 3), ("cart", 4)],
        # the cart came before the view: out of order; a buy without a cart does not count
        "c": [("cart", 0.5), ("view", 1), ("buy", 2)],
        # the cart 25 h after the entry: outside P1D
        "d": [("view", 1), ("cart", 26)],
        # a view before the range is not the entry: entered at 48 h
        "e": [("view", -1), ("view", 48), ("cart", 49), ("buy", 49.5)],
        # the cart 19 h after the entry; the buy 25 h after the ENTRY (6 h after the cart)
        "k": [("view", 1), ("cart", 20), ("buy", 26)],
        # never entered
        "h": [("cart", 1), ("buy", 2)],
        # left out whatever they did
        "restricted": [("view", 1), ("cart", 2), ("buy", 3)],
        "merged": [("view", 1), ("cart", 2), ("buy", 3)],
        "erased": [("view", 1), ("cart", 2), ("buy", 3)],
    }
    people = {}
    for name, items in plan.items():
        people[name] = await person(vault)
        await happened(vault, people[name], *items)
    await Customer.filter(id=people["restricted"]).update(restricted_at=clock.now())
    await Customer.filter(id=people["merged"]).update(merged_into_id=people["a"])
    await Customer.filter(id=people["erased"]).update(erased_at=clock.now())
    return people


async def test_counts_conversions_and_medians(
    gql: GraphQLClient, analyst: dict[str, str], population: dict[str, uuid.UUID]
) -> None:
    found = await ask(gql, analyst, funnel_input("view", "cart", "buy"))
    assert found["__typename"] == "Funnel"
    assert found["entered"] == 6  # a, b, c, d, e, k
    assert found["steps"] == [
        step("view", 6, None, 1.0, None),
        # a (1 h), b (3 h), e (1 h), k (19 h): the median of 1, 1, 3, 19 hours is 2 hours
        step("cart", 4, pytest.approx(4 / 6), pytest.approx(4 / 6), 2 * HOUR),
        # a (3 h after the cart) and e (0.5 h): k's buy is outside the window from its entry
        step("buy", 2, 0.5, pytest.approx(2 / 6), 1.75 * HOUR),
    ]


async def test_a_repeated_type_needs_a_later_event(
    gql: GraphQLClient, analyst: dict[str, str], population: dict[str, uuid.UUID]
) -> None:
    found = await ask(gql, analyst, funnel_input("view", "view", "cart"))
    assert found["steps"] == [
        step("view", 6, None, 1.0, None),
        step("view", 1, pytest.approx(1 / 6), pytest.approx(1 / 6), 2 * HOUR),  # b only
        step("cart", 1, 1.0, pytest.approx(1 / 6), 1 * HOUR),
    ]
    # One step: who entered, nothing else.
    assert (await ask(gql, analyst, funnel_input("cart")))["steps"] == [
        step("cart", 7, None, 1.0, None)  # a, b, c, d, e, k and h
    ]


async def test_the_window_counts_from_the_entry_and_includes_its_end(
    vault: Vault, gql: GraphQLClient, analyst: dict[str, str]
) -> None:
    exact = await person(vault)
    await happened(vault, exact, ("view", 0), ("cart", 2), ("buy", 24))
    found = await ask(gql, analyst, funnel_input("view", "cart", "buy"))
    assert [s["customers"] for s in found["steps"]] == [1, 1, 1]
    assert [s["medianSecondsFromPrevious"] for s in found["steps"]] == [None, 2 * HOUR, 22 * HOUR]
    shorter = await ask(gql, analyst, funnel_input("view", "cart", "buy", within="PT23H59M"))
    assert [s["customers"] for s in shorter["steps"]] == [1, 1, 0]
    assert shorter["steps"][2]["medianSecondsFromPrevious"] is None
    # The range holds entries only: [from, to) excludes an entry at `to`.
    late = await ask(
        gql,
        analyst,
        funnel_input("view", "cart", to=T0.isoformat(), **{"from": "2026-03-01T00:00:00Z"}),
    )
    assert late["entered"] == 0
    assert late["steps"][1] == step("cart", 0, None, 0.0, None)


async def test_a_segment_narrows_the_entries_to_its_members(
    vault: Vault,
    gql: GraphQLClient,
    analyst: dict[str, str],
    population: dict[str, uuid.UUID],
) -> None:
    for name in ("a", "e", "restricted"):
        await CustomerAttributes.update_or_create(
            defaults={"derived_at": clock.now(), "country": "DE"},
            customer_id=population[name],
        )
    saved = await segments.create_segment(
        SYSTEM,
        segments.SegmentDraft(
            "Germany", {"attribute": {"attribute": "attributes.country", "equals": "DE"}}
        ),
    )
    found = await ask(
        gql, analyst, funnel_input("view", "cart", "buy", segmentId=gid("Segment", saved.id))
    )
    assert found["steps"] == [
        step("view", 2, None, 1.0, None),
        step("cart", 2, 1.0, 1.0, 1 * HOUR),
        step("buy", 2, 1.0, 1.0, 1.75 * HOUR),
    ]


async def test_the_service_answers_the_same_as_the_api(population: dict[str, uuid.UUID]) -> None:
    result = await service.funnel(
        SYSTEM,
        service.FunnelQuery(("view", "cart"), timedelta(days=1), T0, T0 + timedelta(days=10)),
    )
    assert result.entered == 6
    assert result.steps[1] == service.FunnelStep("cart", 4, 4 / 6, 4 / 6, 2 * HOUR)


async def test_one_statement_for_the_funnel_whatever_its_length(
    gql: GraphQLClient,
    analyst: dict[str, str],
    population: dict[str, uuid.UUID],
    sql: StatementRecorder,
) -> None:
    await gql("{ viewer { role } }", headers=analyst)  # records the key's last use once
    counts = []
    for steps in (("view", "cart"), ("view", "cart", "buy", "view", "cart", "buy")):
        with sql.recording():
            await ask(gql, analyst, funnel_input(*steps))
        counts.append(sql.count)
        sql.statements.clear()
    assert counts == [2, 2], "the known-types check, then the funnel"


# --------------------------------------------------------------------------- bad input


async def problems(gql: GraphQLClient, headers: dict[str, str], given: dict[str, Any]) -> Any:
    found = await ask(gql, headers, given)
    assert found["__typename"] == "ValidationError", found
    return {(i["field"], i["code"]) for i in found["issues"]}


async def test_each_validation_error(
    gql: GraphQLClient, analyst: dict[str, str], population: dict[str, uuid.UUID]
) -> None:
    assert await problems(gql, analyst, funnel_input()) == {("input.steps", "REQUIRED")}
    eleven = ["view"] * (service.MAX_STEPS + 1)
    assert await problems(gql, analyst, funnel_input(*eleven)) == {
        ("input.steps", "TOO_MANY_ITEMS")
    }
    assert await problems(gql, analyst, funnel_input("view", "nope", "cart", "never")) == {
        ("input.steps.1", "UNKNOWN_CODE"),
        ("input.steps.3", "UNKNOWN_CODE"),
    }
    same = funnel_input("view", to=T0.isoformat())
    assert await problems(gql, analyst, same) == {("input.to", "VALIDATION")}
    assert await problems(gql, analyst, funnel_input("view", within="PT0S")) == {
        ("input.within", "VALIDATION")
    }
    assert await problems(gql, analyst, funnel_input("view", within="-P1D")) == {
        ("input.within", "VALIDATION")
    }
    assert await problems(gql, analyst, funnel_input("view", within="P3651D")) == {
        ("input.within", "VALIDATION")
    }
    # Every problem at once.
    assert await problems(gql, analyst, funnel_input(within="PT0S", to=T0.isoformat())) == {
        ("input.steps", "REQUIRED"),
        ("input.within", "VALIDATION"),
        ("input.to", "VALIDATION"),
    }
    naive = funnel_input("view", **{"from": "2026-03-02T00:00:00"})
    assert await problems(gql, analyst, naive) == {("input.from", "INVALID_FORMAT")}
    customer_id = gid("Customer", population["a"])
    assert await problems(gql, analyst, funnel_input("view", segmentId=customer_id)) == {
        ("input.segmentId", "INVALID_ID")
    }
    assert await problems(gql, analyst, funnel_input("view", segmentId="x")) == {
        ("input.segmentId", "INVALID_ID")
    }


async def test_an_unknown_segment_is_not_found(
    gql: GraphQLClient, analyst: dict[str, str], population: dict[str, uuid.UUID]
) -> None:
    found = await ask(gql, analyst, funnel_input("view", segmentId=gid("Segment", uuid.uuid4())))
    assert found == {
        "__typename": "NotFoundError",
        "code": "NOT_FOUND",
        "field": "input.segmentId",
        "message": "No segment has this id.",
    }


@pytest.mark.parametrize(
    ("within", "says"),
    [
        ("P1M", "Years and months are not accepted"),
        ("P1Y", "Years and months are not accepted"),
        ("7 days", "ISO 8601 duration"),
        ("P", "ISO 8601 duration"),
        ("PT", "ISO 8601 duration"),
        ("P\u0663D", "ISO 8601 duration"),  # an Arabic-Indic 3
        ("P\uff11D", "ISO 8601 duration"),  # a full-width 1
        ("P1Y\u0662M", "Years and months are not accepted"),
    ],
)
async def test_a_malformed_duration_is_refused_clearly(
    gql: GraphQLClient, analyst: dict[str, str], within: str, says: str
) -> None:
    body = await gql(FUNNEL, {"input": funnel_input("view", within=within)}, analyst)
    (error,) = body["errors"]
    assert says in error["message"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    arguments = (
        f'steps: ["view"], within: "{within}", from: "2026-03-02T00:00:00Z", '
        'to: "2026-03-03T00:00:00Z"'
    )
    literal = "{ funnel(input: {" + arguments + "}) { __typename } }"
    body = await gql(literal, headers=analyst)
    assert says in body["errors"][0]["message"]


# --------------------------------------------------------------------------- roles


async def test_roles(
    gql: GraphQLClient, agent: dict[str, str], ingest: dict[str, str], admin_headers: Any
) -> None:
    variables = {"input": funnel_input("view")}
    body = await gql(FUNNEL, variables)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    for headers in (agent, ingest):
        body = await gql(FUNNEL, variables, headers)
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        assert body["data"] is None
    # Allowed, and an unknown type is refused even when no event was ever stored.
    found = await ask(gql, admin_headers, variables["input"])
    assert found["issues"] == [{"field": "input.steps.0", "code": "UNKNOWN_CODE"}]
