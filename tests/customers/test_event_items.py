"""Each event of a batch stands alone: hostile amounts, nesting, numbers and strings are refused
one by one, with a message naming the real problem, and never fail their neighbours. What the
GraphQL types cannot express (a string for a date-time) fails the document instead."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cdlm.auth.settings import AuthSettings
from cdlm.core.identifiers import IdentifierKind
from cdlm.core.roles import Role
from cdlm.core.text import text_problem
from cdlm.customers.api.event_ingest import EventIdentifierInput, EventInput, _event
from cdlm.customers.events import MAX_PROPERTIES_DEPTH, EventIngest, check_event
from cdlm.customers.models import Event
from cdlm.idempotency.service import fingerprint
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.customers.test_events import EVENTS, INGEST_EVENTS, event
from tests.factories import bearer, gid, make_api_key, make_customer
from tests.support.field_paths import _schema, path_problem

NOW = datetime(2026, 7, 1, tzinfo=UTC)
#: ingestEvents with the issues' messages.
INGEST_WITH_MESSAGES = """
mutation($events: [EventInput!]!) {
  ingestEvents(input: {events: $events}) {
    ... on EventsIngested { items { index status eventId issues { field code message } } }
  }
}
"""


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
        INGEST_WITH_MESSAGES,
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


def _issues(item: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["field"], i["code"]) for i in item["issues"]]


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
        gid("Customer", customer.customer_id),
        {"amount": amount, "currency": "EUR"},
    )
    assert [i["status"] for i in items] == ["ACCEPTED", "REJECTED", "ACCEPTED"]
    assert items[1]["issues"] == [
        {"field": "input.events.1.amount", "code": code, "message": message}
    ]
    assert await Event.all().count() == 2


@pytest.mark.parametrize("amount", ["ten", "", "1,5", True, [1], {"value": 1}])
async def test_an_amount_that_is_no_decimal_fails_the_document(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str], amount: Any
) -> None:
    # Not a Decimal at all: a type error of the document, as GraphQL specifies (a typed
    # client cannot send it), reported before anything is stored.
    customer = await make_customer(vault, email="typed@example.com")
    body = await gql(
        INGEST_EVENTS,
        {
            "events": [
                event(0, customerId=gid("Customer", customer.customer_id)),
                event(1, customerId=gid("Customer", customer.customer_id), amount=amount),
            ]
        },
        headers=ingest_headers,
    )
    assert body.get("data") is None
    assert "Decimal" in body["errors"][0]["message"]
    assert await Event.all().count() == 0


async def test_trailing_zeros_beyond_cents_are_accepted_as_cents(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="cents@example.com")
    items = await _send_between_neighbours(
        gql,
        ingest_headers,
        gid("Customer", customer.customer_id),
        {"amount": "19.9000", "currency": "EUR"},
    )
    assert [i["status"] for i in items] == ["ACCEPTED"] * 3
    assert await Event.filter(amount=Decimal("19.90")).count() == 1


@pytest.mark.parametrize("depth", [MAX_PROPERTIES_DEPTH + 1, 200, 800])
async def test_properties_nested_too_deep_are_refused_alone(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str], depth: int
) -> None:
    customer = await make_customer(vault, email="deep@example.com")
    items = await _send_between_neighbours(
        gql, ingest_headers, gid("Customer", customer.customer_id), {"properties": nested(depth)}
    )
    assert [i["status"] for i in items] == ["ACCEPTED", "REJECTED", "ACCEPTED"]
    assert _issues(items[1]) == [("input.events.1.properties", "TOO_LONG")]
    assert await Event.all().count() == 2


@pytest.mark.parametrize("properties", [[1, 2], "text", 3, True])
async def test_properties_that_are_not_an_object_are_refused_alone(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str], properties: Any
) -> None:
    customer = await make_customer(vault, email="shape@example.com")
    items = await _send_between_neighbours(
        gql, ingest_headers, gid("Customer", customer.customer_id), {"properties": properties}
    )
    assert [i["status"] for i in items] == ["ACCEPTED", "REJECTED", "ACCEPTED"]
    assert _issues(items[1]) == [("input.events.1.properties", "INVALID_FORMAT")]


@pytest.mark.parametrize(
    "number",
    ["123456789012345678901234567890", "-9223372036854775809", "NaN", "Infinity", "-Infinity"],
)
async def test_numbers_no_response_can_carry_are_refused_alone(
    gql: GraphQLClient,
    vault: Vault,
    auth: AuthSettings,
    ingest_headers: dict[str, str],
    number: str,
) -> None:
    # Regression: such a number was stored, and every later read of the customer's events
    # with their properties failed with an internal error (the response cannot encode it).
    customer = await make_customer(vault, email="numbers@example.com")
    cid = gid("Customer", customer.customer_id)
    hostile = json.dumps(event(1, customerId=cid, properties="HOSTILE")).replace(
        '"HOSTILE"', '{"n": [1, {"m": ' + number + "}]}"
    )
    payload = (
        f'{{"query": {json.dumps(INGEST_WITH_MESSAGES)}, "variables": {{"events": ['
        f"{json.dumps(event(0, customerId=cid))}, {hostile}, "
        f"{json.dumps(event(2, customerId=cid))}]}}}}"
    )
    response = await gql.http.post(
        "/graphql", content=payload, headers={**ingest_headers, "content-type": "application/json"}
    )
    assert response.status_code == 200, response.text
    items = response.json()["data"]["ingestEvents"]["items"]
    assert [i["status"] for i in items] == ["ACCEPTED", "REJECTED", "ACCEPTED"]
    assert items[1]["issues"] == [
        {
            "field": "input.events.1.properties",
            "code": "INVALID_FORMAT",
            "message": "Numbers in properties are finite, and whole numbers fit in 64 bits.",
        }
    ]
    steward = bearer(await make_api_key(auth, Role.STEWARD))
    read = await gql(EVENTS, {"id": cid}, headers=steward)
    assert "errors" not in read, read
    assert len(read["data"]["customer"]["events"]["nodes"]) == 2


async def test_the_largest_numbers_a_response_carries_are_stored(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="bounds@example.com")
    cid = gid("Customer", customer.customer_id)
    properties = {"max": 2**63 - 1, "min": -(2**63), "big": 1.7976931348623157e308}
    items = await _send_between_neighbours(gql, ingest_headers, cid, {"properties": properties})
    assert [i["status"] for i in items] == ["ACCEPTED"] * 3
    steward = bearer(await make_api_key(auth, Role.STEWARD))
    read = await gql(EVENTS, {"id": cid}, headers=steward)
    assert properties in [n["properties"] for n in read["data"]["customer"]["events"]["nodes"]]


@pytest.mark.parametrize("depth", [900, 920, 990, 5000])
async def test_any_depth_is_refused_per_item_or_as_a_bad_request(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str], depth: int
) -> None:
    # Near Python's recursion limit the JSON decoder itself may give up: then the whole
    # request is a 400 that says why; below it, the deep item alone is refused.
    customer = await make_customer(vault, email="deeper@example.com")
    cid = gid("Customer", customer.customer_id)
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
        assert _issues(items[1]) == [("input.events.1.properties", "TOO_LONG")]


async def test_properties_at_the_depth_limit_are_stored(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str]
) -> None:
    customer = await make_customer(vault, email="limit@example.com")
    items = await _send_between_neighbours(
        gql,
        ingest_headers,
        gid("Customer", customer.customer_id),
        {"properties": nested(MAX_PROPERTIES_DEPTH)},
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


@pytest.mark.pure
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
hostile_text = st.one_of(
    st.text(max_size=80),
    st.sampled_from(
        ["order.placed", "Bad Type", "", "x" * 70, "t" * 64 + "\n", " web ", "EUR", "eur", "€"]
    ),
)
moments = st.datetimes(
    min_value=datetime(1, 1, 2),  # naive bounds: the zones are drawn below
    max_value=datetime(9999, 12, 30),
    timezones=st.none() | st.timezones(),
)
customer_ids = st.one_of(
    st.none(),
    st.text(max_size=40),
    st.uuids().map(str),
    st.uuids().map(lambda u: gid("Customer", u)),
    st.uuids().map(lambda u: gid("Event", u)),
)
identifiers = st.none() | st.builds(
    EventIdentifierInput, kind=st.sampled_from(list(IdentifierKind)), value=hostile_text
)
typed_items = st.builds(
    EventInput,
    type=hostile_text,
    occurred_at=moments,
    source_system=hostile_text,
    channel=hostile_text,
    customer_id=customer_ids,
    identifier=identifiers,
    amount=st.none() | st.decimals(allow_nan=True, allow_infinity=True),
    currency=st.none() | hostile_text,
    properties=json_values,
    external_id=st.none() | st.text(max_size=200),
)


def _no_constants(name: str) -> Any:
    raise AssertionError(f"{name} is not JSON")


def _ingest_events_field() -> Any:
    mutation = _schema().mutation_type
    assert mutation is not None
    return mutation.fields["ingestEvents"]


@pytest.mark.pure
@given(typed_items)
def test_reading_and_checking_any_typed_item_never_raises(item: EventInput) -> None:
    converted = _event(item, "input.events.3")
    if isinstance(converted, list):
        issues = converted
    else:
        assert isinstance(converted, EventIngest)
        issues, sealed = check_event(converted, "input.events.3", NOW)
        if not issues and sealed is not None:
            # What is kept can be answered again: standard JSON of an object, which the
            # responses' encoder takes.
            kept = json.loads(sealed, parse_constant=_no_constants)
            assert isinstance(kept, dict)
            orjson.dumps(kept)
    field = _ingest_events_field()
    for issue in issues:
        # Every problem names this item, never a neighbour, on a real argument path.
        assert issue.field == "input.events.3" or issue.field.startswith("input.events.3.")
        assert path_problem(field, issue.field) is None, issue.field


async def _customer_for_examples(vault: Vault) -> str:
    found = await make_customer(vault, email="hypothesis@example.com")
    return gid("Customer", found.customer_id)


api_items = st.fixed_dictionaries(
    {
        "type": hostile_text,
        "occurredAt": st.sampled_from(
            ["2026-06-01T12:00:00+00:00", "2026-06-01T12:00:00", "1969-12-31T23:59:59Z"]
        ),
        "sourceSystem": st.sampled_from(["shop", "Shop!", ""]),
    },
    optional={
        "customerId": customer_ids,
        "amount": st.decimals(allow_nan=False, allow_infinity=False, places=3).map(str),
        "currency": hostile_text,
        "properties": json_values,
        "channel": hostile_text,
        "externalId": st.text(max_size=200),
    },
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(middle=api_items)
async def test_any_well_typed_item_is_stored_or_refused_alone_through_the_api(
    gql: GraphQLClient, vault: Vault, ingest_headers: dict[str, str], middle: dict[str, Any]
) -> None:
    # The examples share one database: the customer is found again by its email.
    cid = await _customer_for_examples(vault)
    if "customerId" not in middle:
        middle = {**middle, "customerId": cid}
    tag = uuid.uuid4().hex
    batch = [
        event(0, customerId=cid, externalId=f"{tag}-0"),
        middle,
        event(2, customerId=cid, externalId=f"{tag}-2"),
    ]
    response = await gql.http.post(
        "/graphql",
        content=json.dumps({"query": INGEST_WITH_MESSAGES, "variables": {"events": batch}}),
        headers={**ingest_headers, "content-type": "application/json"},
    )
    if text_problem(middle) is not None:
        # Text PostgreSQL cannot store is refused at the door, for the whole request.
        assert response.status_code == 400
        return
    assert response.status_code == 200, response.text
    body = response.json()
    assert "errors" not in body, body
    items = body["data"]["ingestEvents"]["items"]
    assert [items[0]["status"], items[2]["status"]] == ["ACCEPTED", "ACCEPTED"]
    # DUPLICATE: an earlier example sent the same sourceSystem and externalId.
    assert items[1]["status"] in {"ACCEPTED", "DUPLICATE", "REJECTED"}
    assert (items[1]["eventId"] is None) is (items[1]["status"] == "REJECTED")
    assert (items[1]["issues"] == []) is (items[1]["status"] != "REJECTED")
    for issue in items[1]["issues"]:
        assert issue["field"] == "input.events.1" or issue["field"].startswith("input.events.1.")
        assert issue["message"]
