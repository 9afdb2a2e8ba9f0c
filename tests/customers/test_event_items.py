"""Each event of a batch stands alone: hostile amounts, nesting and shapes are refused one by
one, with a message naming the real problem, and never fail their neighbours."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdlm.auth.settings import AuthSettings
from cdlm.core.errors import FieldIssue
from cdlm.core.roles import Role
from cdlm.customers.event_input import parse_event
from cdlm.customers.events import MAX_PROPERTIES_DEPTH, EventIngest, check_event
from cdlm.customers.models import Event
from cdlm.idempotency.service import fingerprint
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.customers.test_events import INGEST_EVENTS, event
from tests.factories import bearer, make_api_key, make_customer

NOW = datetime(2026, 7, 1, tzinfo=UTC)


@pytest.fixture
async def ingest_headers(auth: AuthSettings) -> dict[str, str]:
    return bearer(await make_api_key(auth, Role.INGEST))


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"n": value}
    return value


async def _send_between_neighbours(
    gql: GraphQLClient, headers: dict[str, str], customer_id: str, middle: dict[str, Any]
) -> list[dict[str, Any]]:
    body = await gql(
        INGEST_EVENTS,
        {
            "events": [
                event(0, customerId=customer_id),
                {**event(1), "customerId": customer_id, **middle},
                event(2, customerId=customer_id),
            ]
        },
        headers=headers,
    )
    assert "errors" not in body, body
    items: list[dict[str, Any]] = body["data"]["ingestEvents"]["items"]
    return items


@pytest.mark.parametrize(
    ("amount", "code", "message"),
    [
        ("1e1000000", "IMPLAUSIBLE", "Amounts are below 1,000,000,000,000 in absolute value."),
        ("-1e1000000", "IMPLAUSIBLE", "Amounts are below 1,000,000,000,000 in absolute value."),
        ("1" * 40, "IMPLAUSIBLE", "Amounts are below 1,000,000,000,000 in absolute value."),
        (1e308, "IMPLAUSIBLE", "Amounts are below 1,000,000,000,000 in absolute value."),
        ("NaN", "INVALID_FORMAT", "The amount must be a finite number."),
        ("sNaN", "INVALID_FORMAT", "The amount must be a finite number."),
        ("-Infinity", "INVALID_FORMAT", "The amount must be a finite number."),
        ("1.005", "INVALID_FORMAT", "Amounts have at most 2 decimals."),
        ("1e-1000000", "INVALID_FORMAT", "Amounts have at most 2 decimals."),
        ("ten", "INVALID_FORMAT", "A decimal number."),
    ],
)
async def test_a_bad_amount_is_refused_alone_with_its_real_reason(
    gql: GraphQLClient,
    vault: Vault,
    ingest_headers: dict[str, str],
    amount: Any,
    code: str,
    message: str,
) -> None:
    customer = await make_customer(vault, email="amounts@example.com")
    items = await _send_between_neighbours(
        gql,
        ingest_headers,
        str(customer.customer_id),
        {"amount": amount, "currency": "EUR"},
    )
    assert [i["status"] for i in items] == ["ACCEPTED", "REJECTED", "ACCEPTED"]
    assert items[1]["issues"] == [{"field": "events[1].amount", "code": code}]
    assert await Event.all().count() == 2
    # The message names the real problem (checked where the message is produced).
    parsed = parse_event({**event(1), "customerId": str(customer.customer_id),
                          "amount": amount, "currency": "EUR"}, 1)  # fmt: skip
    if isinstance(parsed, list):
        assert [p.message for p in parsed] == [message]
    else:
        issues, _ = check_event(parsed, "events[1]", NOW)
        assert [i.message for i in issues] == [message]


async def test_trailing_zeros_beyond_cents_are_accepted_as_cents(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="cents@example.com")
    items = await _send_between_neighbours(
        gql, ingest_headers, str(customer.customer_id), {"amount": "19.9000", "currency": "EUR"}
    )
    assert [i["status"] for i in items] == ["ACCEPTED"] * 3
    assert await Event.filter(amount=Decimal("19.90")).count() == 1


@pytest.mark.parametrize("depth", [MAX_PROPERTIES_DEPTH + 1, 200, 800])
async def test_properties_nested_too_deep_are_refused_alone(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str], depth: int
) -> None:
    customer = await make_customer(vault, email="deep@example.com")
    items = await _send_between_neighbours(
        gql, ingest_headers, str(customer.customer_id), {"properties": nested(depth)}
    )
    assert [i["status"] for i in items] == ["ACCEPTED", "REJECTED", "ACCEPTED"]
    assert items[1]["issues"] == [{"field": "events[1].properties", "code": "TOO_LONG"}]
    assert await Event.all().count() == 2


@pytest.mark.parametrize("depth", [900, 920, 990, 5000])
async def test_any_depth_is_refused_per_item_or_as_a_bad_request(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str], depth: int
) -> None:
    # Near Python's recursion limit the JSON decoder itself may give up: then the whole
    # request is a 400 that says why; below it, the deep item alone is refused.
    customer = await make_customer(vault, email="deeper@example.com")
    cid = str(customer.customer_id)
    deep = json.dumps(event(1, customerId=cid, properties="DEEP")).replace(
        '"DEEP"', '{"n":' * depth + '"leaf"' + "}" * depth
    )
    payload = (
        f'{{"query": {json.dumps(INGEST_EVENTS)}, '
        f'"variables": {{"events": [{json.dumps(event(0, customerId=cid))}, {deep}]}}}}'
    )
    response = await gql.http.post(
        "/graphql",
        content=payload,
        headers={**ingest_headers, "content-type": "application/json"},
    )
    if response.status_code == 400:
        (error,) = response.json()["errors"]
        assert error["message"] == "The request body is nested too deeply."
        assert await Event.all().count() == 0
    else:
        assert response.status_code == 200
        items = response.json()["data"]["ingestEvents"]["items"]
        assert [i["status"] for i in items] == ["ACCEPTED", "REJECTED"]
        assert items[1]["issues"] == [{"field": "events[1].properties", "code": "TOO_LONG"}]


async def test_properties_at_the_depth_limit_are_stored(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="limit@example.com")
    items = await _send_between_neighbours(
        gql, ingest_headers, str(customer.customer_id), {"properties": nested(MAX_PROPERTIES_DEPTH)}
    )
    assert [i["status"] for i in items] == ["ACCEPTED"] * 3


async def test_nesting_past_what_json_can_decode_is_a_400(
    gql: GraphQLClient, ingest_headers: dict[str, str]
) -> None:
    depth = 100_000
    properties = '{"n":' * depth + "1" + "}" * depth
    payload = (
        '{"query": ' + json.dumps(INGEST_EVENTS) + ', "variables": {"events": [{"type": "x", '
        '"properties": ' + properties + "}]}}"
    )
    response = await gql.http.post(
        "/graphql",
        content=payload,
        headers={**ingest_headers, "content-type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] != "INTERNAL"


def test_the_idempotency_fingerprint_walks_any_depth() -> None:
    assert fingerprint(nested(50_000)) != fingerprint(nested(50_001))
    assert fingerprint({"a": 1, "b": [1, "x"]}) == fingerprint({"b": [1, "x"], "a": 1})
    assert fingerprint({"a": 1}) != fingerprint({"a": "1"})
    assert fingerprint(["ab"]) != fingerprint(["a", "b"])


# --------------------------------------------------------------------------- properties

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)
amounts = st.one_of(
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.from_regex(r"-?[0-9]{0,6}(\.[0-9]{0,6})?([eE][-+]?[0-9]{1,8})?", fullmatch=True),
    st.floats(),
    st.integers(),
)
event_like = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["order.placed", "Bad Type", "", "x" * 70]),
        "occurredAt": st.sampled_from(
            ["2026-06-01T12:00:00+00:00", "2026-06-01T12:00:00", "yesterday", "9999-12-31T00:00Z"]
        ),
        "sourceSystem": st.sampled_from(["shop", "Shop!", ""]),
        "customerId": st.sampled_from(["00000000-0000-0000-0000-000000000001", "nope"]),
    },
    optional={
        "amount": amounts,
        "currency": st.sampled_from(["EUR", "eur", "XXZ", "", "€"]),
        "properties": json_values,
        "channel": st.text(max_size=10),
        "externalId": st.text(max_size=200),
        "identifier": json_values,
        "extra": json_values,
    },
)


@given(st.one_of(json_values, event_like))
def test_reading_and_checking_any_item_never_raises(raw: Any) -> None:
    parsed = parse_event(raw, 3)
    if isinstance(parsed, list):
        issues: list[FieldIssue] = parsed
    else:
        assert isinstance(parsed, EventIngest)
        issues, _ = check_event(parsed, "events[3]", NOW)
    # Every problem names this item, never a neighbour.
    assert all(i.field.startswith("events[3]") for i in issues)
