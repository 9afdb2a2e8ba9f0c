"""The item-to-item model: exact cosine similarities on a hand-built fixture, item ids read at
ingestion, the model built inside a real analytics run from permitted customers only, and
rebuilt without an erased customer's items."""

from __future__ import annotations

import math
import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pytest

from cdlm.analytics.models import AnalyticsRunStatus
from cdlm.analytics.recommendations import model
from cdlm.analytics.recommendations.models import ItemModel, ItemNeighbour, PopularItem
from cdlm.auth.settings import AuthSettings
from cdlm.config import Settings
from cdlm.consent.models import Decision
from cdlm.core import clock
from cdlm.core.roles import Role
from cdlm.customer360 import export
from cdlm.customers import rights
from cdlm.customers.events import EventIngest, EventRules, store_events
from cdlm.customers.models import Customer, Event
from cdlm.governance.datamap import places
from cdlm.jobs.analytics_refresh import run_once
from cdlm.vault.service import Vault
from tests.analytics.recommendations_support import (
    NOW,
    decide,
    interaction,
    make_purpose,
    store,
)
from tests.conftest import GraphQLClient
from tests.factories import bearer, gid, make_api_key, make_customer

# Customers A, B, C and items x, y, z (positions 0, 1, 2); a purchase weighs 1, a view 0.25:
#   A: x 1, y 1      B: x 1, y 0.25, z 1      C: y 1, z 1
# |x| = sqrt(2), |y| = sqrt(2.0625), |z| = sqrt(2)
# x.y = 1.25, x.z = 1, y.z = 1.25; shared by 2, 1 and 2 customers.
XY = 1.25 / math.sqrt(2 * 2.0625)
XZ = 1 / 2
YZ = XY
LATER = timedelta(minutes=5)
FIXTURE = (
    np.array([0, 0, 1, 1, 1, 2, 2]),
    np.array([0, 1, 0, 1, 2, 1, 2]),
    np.array([1.0, 1.0, 1.0, 0.25, 1.0, 1.0, 1.0]),
)


def _pairs(found: model.Neighbours) -> list[tuple[int, int, float, int, int]]:
    return [
        (int(i), int(j), round(float(s), 10), int(c), int(r))
        for i, j, s, c, r in zip(
            found.item, found.neighbour, found.similarity, found.customers, found.rank, strict=True
        )
    ]


@pytest.mark.pure
def test_cosine_similarities_of_the_hand_built_fixture() -> None:
    found = model.cosine_neighbours(*FIXTURE, 3, k=2, min_customers=1)
    assert _pairs(found) == [
        (0, 1, round(XY, 10), 2, 1),
        (0, 2, round(XZ, 10), 1, 2),
        (1, 0, round(XY, 10), 2, 1),  # a tie with z: the lower position first
        (1, 2, round(YZ, 10), 2, 2),
        (2, 1, round(YZ, 10), 2, 1),
        (2, 0, round(XZ, 10), 1, 2),
    ]
    assert pytest.approx(0.615457, abs=1e-6) == XY


@pytest.mark.pure
def test_pairs_too_few_customers_share_and_neighbours_past_k_are_left_out() -> None:
    shared_by_two = model.cosine_neighbours(*FIXTURE, 3, k=2, min_customers=2)
    assert [(i, j) for i, j, *_ in _pairs(shared_by_two)] == [(0, 1), (1, 0), (1, 2), (2, 1)]
    one = model.cosine_neighbours(*FIXTURE, 3, k=1, min_customers=1)
    assert [(i, j, r) for i, j, _, _, r in _pairs(one)] == [(0, 1, 1), (1, 0, 1), (2, 1, 1)]


@pytest.mark.pure
def test_popularity_sums_the_weights() -> None:
    top, scores, counts = model.popularity(FIXTURE[1], FIXTURE[2], 3, 2)
    # y: 1 + 0.25 + 1; x and z 2 each from 2 customers: the lower position first.
    assert top.tolist() == [1, 0]
    assert scores.tolist() == [2.25, 2.0]
    assert counts.tolist() == [3, 2]


@pytest.mark.pure
def test_no_interactions_make_no_pairs() -> None:
    empty = np.zeros(0, dtype=np.int64)
    found = model.cosine_neighbours(empty, empty, np.zeros(0), 0, k=5, min_customers=1)
    assert found.item.size == 0


# ------------------------------------------------------------------------------ ingestion


async def _ingest(vault: Vault, customer: uuid.UUID, properties: Any) -> Any:
    return await store_events(
        vault,
        [
            EventIngest(
                type="purchase",
                occurred_at=NOW,
                source_system="shop",
                customer_id=customer,
                properties=properties,
            )
        ],
        rules=EventRules(item_keys=("itemId", "productId", "sku")),
    )


@pytest.mark.parametrize(
    ("properties", "stored"),
    [
        ({"productId": "  SKU-1 "}, "SKU-1"),
        ({"sku": 4711}, "4711"),
        ({"itemId": "a", "sku": "b"}, "a"),  # the first configured key present wins
        ({"itemId": None, "sku": "b"}, "b"),
        ({"sku": "tee@2x"}, "tee@2x"),  # an @, but no email address
        ({"sku": "A@B"}, "A@B"),
        ({"contentId": "not configured"}, None),
        ({"other": 1}, None),
        (None, None),
    ],
)
async def test_the_item_id_is_read_into_a_clear_column_as_the_event_is_stored(
    vault: Vault, properties: Any, stored: str | None
) -> None:
    with clock.frozen_at(NOW):
        customer = (await make_customer(vault, email="i@example.com")).customer_id
        result, _ = await _ingest(vault, customer, properties)
    assert not result.rejected
    event = await Event.get(id=result.accepted[0])
    assert event.item_id == stored


@pytest.mark.parametrize(
    ("properties", "code"),
    [
        ({"itemId": {"nested": 1}}, "INVALID_FORMAT"),
        ({"itemId": 1.5}, "INVALID_FORMAT"),
        ({"itemId": True}, "INVALID_FORMAT"),
        ({"itemId": "   "}, "INVALID_FORMAT"),
        ({"itemId": "line\nbreak"}, "INVALID_FORMAT"),
        ({"itemId": "x" * 129}, "TOO_LONG"),
        ({"sku": "pii@example.com"}, "INVALID_FORMAT"),
        ({"itemId": "user:Pii.Person+tag@Mail.Example.CO.UK"}, "INVALID_FORMAT"),
        ({"productId": "ü@exämple.de"}, "INVALID_FORMAT"),
    ],
)
async def test_a_malformed_item_id_rejects_its_event_only(
    vault: Vault, properties: Any, code: str
) -> None:
    with clock.frozen_at(NOW):
        customer = (await make_customer(vault, email="m@example.com")).customer_id
        result, _ = await _ingest(vault, customer, properties)
    [issue] = result.rejected[0]
    assert (issue.field, issue.code.value) == ("events.0.properties", code)
    assert await Event.filter(customer_id=customer).count() == 0


# -------------------------------------------------------------------- the analytics run


def _settings(settings: Settings, min_customers: int = 1) -> Settings:
    return replace(
        settings,
        recommendations=replace(settings.recommendations, min_customers=min_customers),
    )


async def _stored() -> list[tuple[str, str, float, int, int]]:
    rows = await ItemNeighbour.all().order_by("item_id", "rank")
    return [(r.item_id, r.neighbour_id, round(r.similarity, 10), r.customers, r.rank) for r in rows]


async def _fixture(vault: Vault) -> dict[str, uuid.UUID]:
    """A, B, C (the fixture above) granted; D denied; E restricted; F never decided."""
    await make_purpose()
    people = {
        name: (await make_customer(vault, email=f"{name.lower()}@example.com")).customer_id
        for name in "ABCDEF"
    }
    for name in "ABCE":
        await decide(vault, people[name], Decision.GRANTED)
    await decide(vault, people["D"], Decision.DENIED)
    a, b, c = people["A"], people["B"], people["C"]
    await store(
        vault,
        [
            interaction(a, "x"),
            interaction(a, "y", days_ago=2),
            interaction(a, "y", "view", days_ago=3),  # a view of a bought item: the purchase counts
            interaction(b, "x"),
            interaction(b, "y", "view"),
            interaction(b, "z"),
            interaction(c, "y"),
            interaction(c, "z"),
            interaction(people["D"], "x"),
            interaction(people["D"], "w"),
            interaction(people["E"], "x"),
            interaction(people["E"], "v"),
            interaction(people["F"], "u"),
            interaction(a, "late", days_ago=-0.002),  # after the run's as-of moment
            interaction(a, "old", days_ago=400),  # before the window
            EventIngest(
                type="page_view",  # neither a purchase nor a view
                occurred_at=NOW,
                source_system="web",
                customer_id=c,
                properties={"productId": "x"},
            ),
        ],
    )
    await Customer.filter(id=people["E"]).update(restricted_at=NOW)
    return people


async def test_the_analytics_run_builds_the_model_from_permitted_customers_only(
    vault: Vault, settings: Settings
) -> None:
    with clock.frozen_at(NOW):
        await _fixture(vault)
    with clock.frozen_at(NOW + LATER):
        run = await run_once(_settings(settings), NOW)
    assert run.status is AnalyticsRunStatus.FINISHED
    assert await _stored() == [
        ("x", "y", round(XY, 10), 2, 1),
        ("x", "z", round(XZ, 10), 1, 2),
        ("y", "x", round(XY, 10), 2, 1),
        ("y", "z", round(YZ, 10), 2, 2),
        ("z", "y", round(YZ, 10), 2, 1),
        ("z", "x", round(XZ, 10), 1, 2),
    ]
    popular = await PopularItem.all().order_by("rank")
    assert [(p.item_id, p.score, p.customers, p.rank) for p in popular] == [
        ("y", 2.25, 3, 1),
        ("x", 2.0, 2, 2),
        ("z", 2.0, 2, 3),
    ]
    evidence = await ItemModel.get(run_id=run.id)
    # D refused and F never consented (the purpose is opt-in); E is restricted: not counted.
    assert (evidence.customers, evidence.refused, evidence.interactions, evidence.items) == (
        3,
        2,
        7,
        3,
    )
    assert (evidence.neighbours, evidence.purpose, evidence.as_of, evidence.note) == (
        6,
        "personalization",
        NOW,
        None,
    )
    assert not await ItemNeighbour.filter(item_id__in=["w", "v", "u", "late", "old"]).exists()


async def test_the_default_minimum_keeps_only_pairs_two_customers_share(
    vault: Vault, settings: Settings
) -> None:
    with clock.frozen_at(NOW):
        await _fixture(vault)
        await run_once(_settings(settings, min_customers=2), NOW)
    assert [(i, j) for i, j, *_ in await _stored()] == [
        ("x", "y"),
        ("y", "x"),
        ("y", "z"),
        ("z", "y"),
    ]


async def test_without_the_purpose_no_model_is_built_and_the_old_one_is_cleared(
    vault: Vault, settings: Settings
) -> None:
    await ItemNeighbour.create(item_id="p", neighbour_id="q", similarity=0.5, customers=3, rank=1)
    await PopularItem.create(item_id="p", score=3.0, customers=3, rank=1)
    with clock.frozen_at(NOW):
        a = (await make_customer(vault, email="a@example.com")).customer_id
        await store(vault, [interaction(a, "x"), interaction(a, "y")])
        run = await run_once(_settings(settings), NOW)
    assert run.status is AnalyticsRunStatus.FINISHED
    assert await ItemNeighbour.all().count() == 0
    assert await PopularItem.all().count() == 0
    evidence = await ItemModel.get(run_id=run.id)
    assert evidence.note is not None
    assert "'personalization' is not defined" in evidence.note
    assert evidence.customers == 0


async def test_erasure_removes_the_customers_items_and_the_next_run_rebuilds_without_them(
    vault: Vault, settings: Settings
) -> None:
    with clock.frozen_at(NOW):
        people = await _fixture(vault)
        await run_once(_settings(settings), NOW)
    assert ("x", "z", round(XZ, 10), 1, 2) in await _stored()  # only B has both x and z
    await rights.erase(people["B"], rights.Keep())
    assert await Event.filter(customer_id=people["B"]).count() == 0
    with clock.frozen_at(NOW + LATER):
        await run_once(_settings(settings), NOW)
    # Without B: x = (A 1), y = (A 1, C 1), z = (C 1): x.y = 1, y.z = 1, x.z = 0.
    assert await _stored() == [
        ("x", "y", round(1 / math.sqrt(2), 10), 1, 1),
        ("y", "x", round(1 / math.sqrt(2), 10), 1, 1),
        ("y", "z", round(1 / math.sqrt(2), 10), 1, 2),
        ("z", "y", round(1 / math.sqrt(2), 10), 1, 1),
    ]
    popular = await PopularItem.all().order_by("rank")
    assert [(p.item_id, p.score) for p in popular] == [("y", 2.0), ("x", 1.0), ("z", 1.0)]
    assert await ItemModel.all().count() == 2


INGEST = """
mutation($events: [EventInput!]!) {
  ingestEvents(input: {events: $events}) {
    ... on EventsIngested { items { index status issues { field code } } }
  }
}
"""
EVENTS = "query($id: ID!) { customer(id: $id) { events { nodes { type itemId } } } }"


async def test_through_the_api_the_item_id_is_shown_and_a_malformed_one_names_its_field(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    with clock.frozen_at(NOW):
        customer = (await make_customer(vault, email="api@example.com")).customer_id

        def sent(properties: Any) -> dict[str, Any]:
            return {
                "type": "purchase",
                "occurredAt": NOW.isoformat(),
                "sourceSystem": "shop",
                "customerId": gid("Customer", customer),
                "properties": properties,
            }

        ingest = bearer(await make_api_key(auth, Role.INGEST))
        body = await gql(
            INGEST, {"events": [sent({"sku": "A-1"}), sent({"itemId": ["a", "b"]})]}, ingest
        )
        items = body["data"]["ingestEvents"]["items"]
        assert [(i["status"], i["issues"]) for i in items] == [
            ("ACCEPTED", []),
            ("REJECTED", [{"field": "input.events.1.properties", "code": "INVALID_FORMAT"}]),
        ]
        shown = await gql(
            EVENTS, {"id": gid("Customer", customer)}, bearer(await make_api_key(auth))
        )
    assert shown["data"]["customer"]["events"]["nodes"] == [{"type": "purchase", "itemId": "A-1"}]
    document = await export.copy_of(vault, customer)
    assert document is not None
    assert [e["item_id"] for e in document["events"]] == ["A-1"]


async def test_an_item_id_holding_an_email_address_rejects_its_event_without_repeating_it(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings
) -> None:
    with clock.frozen_at(NOW):
        customer = (await make_customer(vault, email="pii@example.com")).customer_id

        def sent(minute: int, properties: Any) -> dict[str, Any]:
            return {
                "type": "purchase",
                "occurredAt": (NOW - timedelta(minutes=minute)).isoformat(),
                "sourceSystem": "shop",
                "customerId": gid("Customer", customer),
                "properties": properties,
            }

        events = [sent(3, {"sku": "A-1"}), sent(2, {"sku": "pii@example.com"}), sent(1, {})]
        body = await gql(
            "mutation($events: [EventInput!]!) { ingestEvents(input: {events: $events}) {"
            " ... on EventsIngested { items { status issues { field code message } } } } }",
            {"events": events},
            bearer(await make_api_key(auth, Role.INGEST)),
        )
    items = body["data"]["ingestEvents"]["items"]
    assert [i["status"] for i in items] == ["ACCEPTED", "REJECTED", "ACCEPTED"]
    assert items[1]["issues"] == [
        {
            "field": "input.events.1.properties",
            "code": "INVALID_FORMAT",
            "message": "The item id (sku) holds an email address: an item id names a product "
            "or an article, not a person.",
        }
    ]
    stored = await Event.filter(customer_id=customer).order_by("occurred_at")
    assert [e.item_id for e in stored] == ["A-1", None]
    assert not await Event.filter(item_id__contains="@").exists()


@pytest.mark.pure
def test_the_item_id_is_on_the_data_map() -> None:
    [place] = [p for p in places() if p.field == "customer.events.itemId"]
    assert (place.table, place.column, place.encrypted) == ("events", "item_id", False)
