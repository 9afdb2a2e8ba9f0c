"""Keyset pagination: pages, cursors, ordering, bounds and stability under inserts."""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cdlm.app import create_app
from cdlm.config import Settings
from cdlm.core.errors import ValidationFailed
from cdlm.graphql.pagination import (
    MAX_PAGE_SIZE,
    SortKey,
    check_page_size,
    decode_cursor,
    encode_cursor,
    paginate,
)
from tests.conftest import GraphQLClient
from tests.support.models import Widget
from tests.support.schema import widget_schema
from tests.support.sql_counter import StatementRecorder

BASE = datetime(2026, 1, 1, tzinfo=UTC)
PAGE = """
query Page($first: Int, $after: String, $byRank: Boolean!) {
  widgets(first: $first, after: $after, byRank: $byRank) {
    edges { cursor node { name rank } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}
"""


@pytest.fixture
async def widgets(settings: Settings) -> AsyncIterator[GraphQLClient]:
    transport = httpx.ASGITransport(app=create_app(settings, schema=widget_schema(settings)))
    async with httpx.AsyncClient(transport=transport, base_url="http://cdlm.test") as http:
        yield GraphQLClient(http)


def forge(payload: Any) -> str:
    """A cursor as the server encodes one, around any JSON payload."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


async def make_widgets(count: int, *, rank: int | None = None) -> list[Widget]:
    rows = [
        Widget(
            id=uuid.uuid4(),
            name=f"w{i:03d}",
            rank=rank if rank is not None else i % 5,
            created_at=BASE + timedelta(minutes=i),
        )
        for i in range(count)
    ]
    await Widget.bulk_create(rows)
    return rows


async def walk(widgets: GraphQLClient, first: int, by_rank: bool) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    after = None
    while True:
        body = await widgets(PAGE, {"first": first, "after": after, "byRank": by_rank})
        connection = body["data"]["widgets"]
        seen.extend(edge["node"] for edge in connection["edges"])
        if not connection["pageInfo"]["hasNextPage"]:
            return seen
        after = connection["pageInfo"]["endCursor"]


async def test_walking_all_pages_returns_every_row_once_in_order(widgets: GraphQLClient) -> None:
    await make_widgets(23)
    seen = await walk(widgets, 5, by_rank=False)
    assert [w["name"] for w in seen] == [f"w{i:03d}" for i in range(23)]


async def test_mixed_direction_ordering_with_ties(widgets: GraphQLClient) -> None:
    rows = await make_widgets(17)
    seen = await walk(widgets, 4, by_rank=True)
    expected = sorted(rows, key=lambda r: (-r.rank, str(r.id)))
    assert [w["name"] for w in seen] == [r.name for r in expected]


async def test_page_info(widgets: GraphQLClient) -> None:
    await make_widgets(3)
    first = (await widgets(PAGE, {"first": 2, "byRank": False}))["data"]["widgets"]
    assert first["pageInfo"]["hasNextPage"] is True
    assert first["pageInfo"]["hasPreviousPage"] is False
    assert first["pageInfo"]["startCursor"] == first["edges"][0]["cursor"]
    assert first["pageInfo"]["endCursor"] == first["edges"][1]["cursor"]
    after = first["pageInfo"]["endCursor"]
    last = (await widgets(PAGE, {"first": 2, "after": after, "byRank": False}))["data"]["widgets"]
    assert [e["node"]["name"] for e in last["edges"]] == ["w002"]
    assert last["pageInfo"]["hasNextPage"] is False
    assert last["pageInfo"]["hasPreviousPage"] is True


async def test_empty_list(widgets: GraphQLClient) -> None:
    body = await widgets(PAGE, {"byRank": False})
    assert body["data"]["widgets"] == {
        "edges": [],
        "pageInfo": {
            "hasNextPage": False,
            "hasPreviousPage": False,
            "startCursor": None,
            "endCursor": None,
        },
    }


async def test_rows_inserted_before_the_cursor_do_not_shift_the_next_page(
    widgets: GraphQLClient,
) -> None:
    await make_widgets(6)
    first = (await widgets(PAGE, {"first": 3, "byRank": False}))["data"]["widgets"]
    await Widget.create(id=uuid.uuid4(), name="early", rank=1, created_at=BASE - timedelta(days=1))
    after = first["pageInfo"]["endCursor"]
    second = (await widgets(PAGE, {"first": 3, "after": after, "byRank": False}))["data"]
    assert [e["node"]["name"] for e in second["widgets"]["edges"]] == ["w003", "w004", "w005"]


@pytest.mark.parametrize("first", [0, -1, MAX_PAGE_SIZE + 1])
async def test_page_size_out_of_bounds_is_refused(widgets: GraphQLClient, first: int) -> None:
    body = await widgets(PAGE, {"first": first, "byRank": False})
    assert body["data"] is None
    assert body["errors"][0]["extensions"]["code"] == "VALIDATION"
    assert body["errors"][0]["extensions"]["field"] == "first"


async def test_default_page_size_is_20_and_max_is_honoured(widgets: GraphQLClient) -> None:
    await make_widgets(MAX_PAGE_SIZE + 5)
    default = (await widgets(PAGE, {"byRank": False}))["data"]["widgets"]["edges"]
    assert len(default) == 20
    biggest = (await widgets(PAGE, {"first": MAX_PAGE_SIZE, "byRank": False}))["data"]
    assert len(biggest["widgets"]["edges"]) == MAX_PAGE_SIZE


async def test_cursor_of_another_ordering_is_refused(widgets: GraphQLClient) -> None:
    await make_widgets(3)
    body = await widgets(PAGE, {"first": 1, "byRank": False})
    cursor = body["data"]["widgets"]["pageInfo"]["endCursor"]
    tampered = encode_cursor([SortKey("name")], ["x"])
    bad = await widgets(PAGE, {"first": 1, "after": tampered, "byRank": False})
    assert bad["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
    # A cursor of the same length made for another sort is refused too, not run as SQL.
    wrong = await widgets(PAGE, {"first": 1, "after": cursor, "byRank": True})
    assert wrong["data"] is None
    assert wrong["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"


async def test_cursor_of_another_list_with_the_same_ordering_is_refused(
    widgets: GraphQLClient,
) -> None:
    await make_widgets(3)
    order = [SortKey("created_at"), SortKey("id")]
    at, key = BASE, uuid.uuid4()
    own = encode_cursor(order, [at, key], list_name=Widget._meta.db_table)
    assert "errors" not in await widgets(PAGE, {"first": 1, "after": own, "byRank": False})
    for list_name in [None, "staff_users", "api_keys"]:
        other = encode_cursor(order, [at, key], list_name=list_name)
        body = await widgets(PAGE, {"first": 1, "after": other, "byRank": False})
        assert body["data"] is None, list_name
        assert body["errors"][0]["extensions"]["code"] == "INVALID_CURSOR", list_name


def test_a_cursor_names_its_list() -> None:
    order = [SortKey("created_at", descending=True), SortKey("id")]
    values = [BASE, uuid.uuid4()]
    staff = encode_cursor(order, values, list_name="staff_users")
    assert decode_cursor(staff, order, list_name="staff_users") == values
    for other in [None, "api_keys", "staff_users:"]:
        with pytest.raises(ValidationFailed) as caught:
            decode_cursor(staff, order, list_name=other)
        assert caught.value.code == "INVALID_CURSOR"
    with pytest.raises(ValidationFailed):
        decode_cursor(encode_cursor(order, values), order, list_name="staff_users")


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 once in UTC
        "0001-01-01T00:00:00+00:01",
        "9999-12-31T23:59:59-14:00",  # after year 9999 once in UTC
        "9999-12-31T23:59:59.999999-00:01",
        "2026-01-01T00:00:00",  # no zone
        "2026-01-01",
    ],
)
def test_timestamps_without_zone_or_out_of_range_in_utc_are_invalid_cursors(moment: str) -> None:
    order = [SortKey("created_at"), SortKey("id")]
    key = {"u": str(uuid.uuid4())}
    # ``forge`` builds what the server builds, so only the timestamp differs.
    assert forge([1, "created_at,id", [{"t": BASE.isoformat()}, key]]) == encode_cursor(
        order, [BASE, uuid.UUID(key["u"])]
    )
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(forge([1, "created_at,id", [{"t": moment}, key]]), order, field="after")
    assert (caught.value.code, caught.value.field) == ("INVALID_CURSOR", "after")


def test_timestamps_come_back_in_utc() -> None:
    order = [SortKey("created_at"), SortKey("id")]
    key = uuid.uuid4()
    east = datetime(2026, 1, 1, 9, 30, tzinfo=timezone(timedelta(hours=9, minutes=30)))
    [at, same] = decode_cursor(encode_cursor(order, [east, key]), order)
    assert at == east
    assert at.tzinfo is UTC
    assert at == datetime(2026, 1, 1, tzinfo=UTC)
    assert same == key
    edge = datetime(1, 1, 1, tzinfo=UTC)  # the very first moment datetime knows still works
    assert decode_cursor(encode_cursor(order, [edge, key]), order) == [edge, key]


async def test_one_page_is_one_statement(sql: StatementRecorder) -> None:
    await make_widgets(30)
    with sql.recording():
        page = await paginate(
            Widget.all(), order=[SortKey("created_at"), SortKey("id")], first=10, after=None
        )
    assert len(page.rows) == 10
    assert sql.count == 1, sql.statements


@given(
    st.lists(
        st.one_of(
            st.none(),
            st.integers(-(2**53), 2**53),
            st.text(max_size=20),
            st.booleans(),
            st.uuids(),
            st.datetimes(timezones=st.just(UTC)),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_cursor_round_trip(values: list[Any]) -> None:
    order = [SortKey(f"k{i}", descending=i % 2 == 1) for i in range(len(values))]
    assert decode_cursor(encode_cursor(order, values), order) == values


@given(st.text(max_size=60))
def test_garbage_cursor_is_a_validation_error(garbage: str) -> None:
    # Whatever the string, the only failure is a validation error naming the argument.
    order = [SortKey("created_at"), SortKey("id")]
    refused: ValidationFailed | None = None
    try:
        values = decode_cursor(garbage, order, field="after")
    except ValidationFailed as error:
        refused = error
    if refused is None:
        assert encode_cursor(order, values)  # it really was a cursor for this ordering
        return
    assert (refused.code, refused.field, refused.message) == (
        "INVALID_CURSOR",
        "after",
        "The cursor is not valid for this list.",
    )


@pytest.mark.parametrize("cursor", ["", "é", "W10", "bm90IGpzb24", "!!!!", "a" * 5000])
def test_malformed_cursors_name_the_argument(cursor: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        decode_cursor(cursor, [SortKey("created_at"), SortKey("id")], field="after")
    assert caught.value.field == "after"
    assert caught.value.code == "INVALID_CURSOR"


def test_check_page_size() -> None:
    assert check_page_size(None) == 20
    assert check_page_size(MAX_PAGE_SIZE) == MAX_PAGE_SIZE
    with pytest.raises(ValidationFailed):
        check_page_size(0)
