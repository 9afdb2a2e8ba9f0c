"""Forged pagination cursors sent through the real API.

A cursor is base64url of ``[version, list tag, [encoded sort-key values]]``, the list tag being
``<table>:<ordering>`` for the lists :func:`paginate` serves and the ordering alone for a
customer's events. The cursors here decode fine as base64 and JSON but carry values of the
wrong type, extra keys, a timestamp without zone or out of range in UTC, or the sort keys of
another list. Every one must come back as the
documented ``INVALID_CURSOR`` error on ``after``: never an internal error, never a page.
"""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from cdlm.audit.models import AuditEntry
from cdlm.auth.models import StaffUser
from cdlm.auth.settings import AuthSettings
from cdlm.core.roles import Role
from cdlm.customers.api.queries import RECENTLY_UPDATED
from cdlm.customers.api.types import EVENT_ORDER
from cdlm.customers.events import EventIngest, store_events
from cdlm.customers.models import Customer
from cdlm.dsr.api.queries import OLDEST_FIRST
from cdlm.dsr.models import DataSubjectRequest
from cdlm.graphql.pagination import SortKey, encode_cursor
from cdlm.vault.service import Vault
from tests.conftest import GraphQLClient
from tests.dsr.support import file_request
from tests.factories import gid, make_customer, make_staff

MESSAGE = "The cursor is not valid for this list."
AT = {"t": "2026-01-01T00:00:00+00:00"}
ID = {"u": "00000000-0000-4000-8000-000000000000"}
AT_TIME = datetime(2026, 1, 1, tzinfo=UTC)

CUSTOMERS = """
query($after: String) { customers(first: 5, after: $after) { nodes { id } } }
"""
REQUESTS = """
query($after: String) { dataSubjectRequests(first: 5, after: $after) { nodes { id } } }
"""
AUDIT = """
query($after: String) { auditLog(first: 5, after: $after) { nodes { sequence } } }
"""
EVENTS = """
query($id: ID!, $after: String) {
  customer(id: $id) { id events(first: 5, after: $after) { nodes { type } } }
}
"""
STAFF = """
query($after: String) { staffUsers(first: 5, after: $after) { nodes { id } } }
"""
API_KEYS = """
query($after: String) { apiKeys(first: 5, after: $after) { nodes { id } } }
"""


def forge(payload: Any) -> str:
    """A cursor exactly as the server encodes one, around any JSON payload."""
    raw = json.dumps(payload, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def tag(order: list[SortKey], table: str | None) -> str:
    """The list tag of ``order`` on ``table`` (None: a list outside ``paginate``)."""
    ordering = ",".join(f"-{k.field}" if k.descending else k.field for k in order)
    return ordering if table is None else f"{table}:{ordering}"


#: Sort-key values that decode but do not fit a (timestamp, uuid) ordering.
WRONG_PAIRS: dict[str, list[Any]] = {
    "number for the timestamp": [1767225600, ID],
    "float for the timestamp": [1767225600.5, ID],
    "boolean for the timestamp": [True, ID],
    "bare string for the timestamp": ["2026-01-01T00:00:00+00:00", ID],
    "number for the uuid": [AT, 42],
    "bare string for the uuid": [AT, "00000000-0000-4000-8000-000000000000"],
    "timestamp for the uuid": [AT, AT],
    "uuid for the timestamp": [ID, ID],
    "list for the timestamp": [[2026, 1, 1], ID],
    "list for the uuid": [AT, [1, 2, 3]],
    "null timestamp": [None, ID],
    "null uuid": [AT, None],
    "huge string for the timestamp": ["x" * 600, ID],
    "huge timestamp text": [{"t": "2026-01-01T00:00:00" + "0" * 600}, ID],
    "timestamp without zone": [{"t": "2026-01-01T00:00:00"}, ID],
    "number inside the timestamp": [{"t": 1767225600}, ID],
    "null inside the timestamp": [{"t": None}, ID],
    "not a uuid": [AT, {"u": "not-a-uuid"}],
    "number inside the uuid": [AT, {"u": 7}],
    "extra key beside the timestamp": [{"t": AT["t"], "x": 1}, ID],
    "extra key beside the uuid": [AT, {"u": ID["u"], "extra": "1"}],
    "unknown value kind": [{"z": AT["t"]}, ID],
    "empty object": [{}, ID],
    "decimal for the timestamp": [{"d": "1.5"}, ID],
    "not-a-number for the timestamp": [{"d": "NaN"}, ID],
}

#: Whole payloads that are valid JSON but not the cursor structure.
WRONG_SHAPES: dict[str, Any] = {
    "a number": 1,
    "null": None,
    "a string": "cursor",
    "an object with three keys": {"a": 1, "b": 2, "c": 3},
    "too few parts": [1, "x"],
    "too many parts": [1, "x", [], "extra"],
    "values not a list": [1, "x", {"a": 1}],
}


async def _customer_with_events(vault: Vault) -> str:
    created = await make_customer(vault, email="paged@example.com", given_name="Paged")
    await store_events(
        vault,
        [
            EventIngest(
                type="page.viewed",
                occurred_at=created_at,
                source_system="web",
                customer_id=created.customer_id,
            )
            for created_at in [AT_TIME, AT_TIME.replace(hour=1)]
        ],
    )
    return gid("Customer", created.customer_id)


def well_formed(order: list[SortKey]) -> dict[str, str]:
    """A timestamp the rows of the list come after in ``order``."""
    return {"t": "2999-01-01T00:00:00+00:00" if order[0].descending else "2000-01-01T00:00:00Z"}


def assert_refused(body: dict[str, Any], path: list[str]) -> None:
    """The answer is exactly one INVALID_CURSOR error on ``after`` at ``path``, and no page."""
    assert "errors" in body, body
    [error] = body["errors"]
    assert error["message"] == MESSAGE, error
    assert error["extensions"]["code"] == "INVALID_CURSOR", error
    assert error["extensions"]["field"] == "after", error
    assert error["path"] == path, error
    assert "Internal server error" not in json.dumps(body)
    # The null propagates to the nearest nullable parent: no node of the list comes back.
    data = body["data"]
    assert data is None or data.get(path[0]) is None, body


@pytest.fixture
async def populated(
    gql: GraphQLClient, vault: Vault, auth: AuthSettings, admin_headers: dict[str, str]
) -> str:
    """One of everything the lists show, so a cursor the server ran would return rows."""
    customer_id = await _customer_with_events(vault)
    await file_request(gql, admin_headers, "ACCESS", "paged@example.com")
    await make_staff(auth, Role.STEWARD)
    return customer_id


async def _run(
    gql: GraphQLClient,
    headers: dict[str, str],
    query: str,
    cursor: str | None,
    customer_id: str,
) -> dict[str, Any]:
    variables: dict[str, Any] = {"after": cursor}
    if "$id" in query:
        variables["id"] = customer_id
    return await gql(query, variables, headers)


#: Each list as (query, list tag, ordering, path of the connection).
PAIR_LISTS = [
    pytest.param(
        CUSTOMERS,
        tag(RECENTLY_UPDATED, Customer._meta.db_table),
        RECENTLY_UPDATED,
        ["customers"],
        id="customers",
    ),
    pytest.param(
        REQUESTS,
        tag(OLDEST_FIRST, DataSubjectRequest._meta.db_table),
        OLDEST_FIRST,
        ["dataSubjectRequests"],
        id="dataSubjectRequests",
    ),
    pytest.param(
        EVENTS, tag(EVENT_ORDER, None), EVENT_ORDER, ["customer", "events"], id="customer.events"
    ),
    pytest.param(
        STAFF,
        tag([SortKey("created_at", descending=True), SortKey("id")], StaffUser._meta.db_table),
        [SortKey("created_at", descending=True), SortKey("id")],
        ["staffUsers"],
        id="staffUsers",
    ),
]


@pytest.mark.parametrize(("query", "list_tag", "order", "path"), PAIR_LISTS)
async def test_forged_values_are_refused_by_every_timestamp_and_uuid_list(
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    populated: str,
    query: str,
    list_tag: str,
    order: list[SortKey],
    path: list[str],
) -> None:
    # The ordering's own well-formed cursor works, so the refusals below are about the values.
    fine = forge([1, list_tag, [well_formed(order), ID]])
    answered = await _run(gql, admin_headers, query, fine, populated)
    assert "errors" not in answered, answered
    for name, values in WRONG_PAIRS.items():
        body = await _run(gql, admin_headers, query, forge([1, list_tag, values]), populated)
        try:
            assert_refused(body, path)
        except AssertionError as failure:
            raise AssertionError(f"{name}: {failure}") from None


@pytest.mark.parametrize(("query", "list_tag", "order", "path"), PAIR_LISTS)
async def test_cursors_of_the_wrong_shape_are_refused(
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    populated: str,
    query: str,
    list_tag: str,
    order: list[SortKey],
    path: list[str],
) -> None:
    shapes = {
        **WRONG_SHAPES,
        "another version": [2, list_tag, [AT, ID]],
        "version as text": ["1", list_tag, [AT, ID]],
        "one value short": [1, list_tag, [AT]],
        "one value too many": [1, list_tag, [AT, ID, ID]],
        "no tag": [1, None, [AT, ID]],
        "the ordering of another table": [1, tag(order, "api_keys"), [AT, ID]],
    }
    for name, payload in shapes.items():
        body = await _run(gql, admin_headers, query, forge(payload), populated)
        try:
            assert_refused(body, path)
        except AssertionError as failure:
            raise AssertionError(f"{name}: {failure}") from None


@pytest.mark.parametrize(
    "moment",
    [
        "0001-01-01T00:00:00+14:00",  # before year 1 once in UTC
        "9999-12-31T23:59:59-14:00",  # after year 9999 once in UTC
    ],
)
@pytest.mark.parametrize(("query", "list_tag", "order", "path"), PAIR_LISTS)
async def test_timestamps_that_overflow_in_utc_are_refused(
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    populated: str,
    query: str,
    list_tag: str,
    order: list[SortKey],
    path: list[str],
    moment: str,
) -> None:
    fine = forge([1, list_tag, [well_formed(order), ID]])  # the same with an ordinary moment
    assert "errors" not in await _run(gql, admin_headers, query, fine, populated)
    cursor = forge([1, list_tag, [{"t": moment}, ID]])
    assert_refused(await _run(gql, admin_headers, query, cursor, populated), path)


async def test_forged_sequences_are_refused_by_the_audit_log(
    gql: GraphQLClient, admin_headers: dict[str, str], populated: str
) -> None:
    audit_tag = tag([SortKey("sequence", descending=True)], AuditEntry._meta.db_table)
    assert (await gql(AUDIT, {}, admin_headers))["data"]["auditLog"]["nodes"]  # rows to leak
    wrong: dict[str, list[Any]] = {
        "float": [1.5],
        "boolean": [True],
        "text": ["5"],
        "null": [None],
        "list": [[5]],
        "timestamp": [AT],
        "uuid": [ID],
        "decimal": [{"d": "5"}],
        "past the bigint range": [2**63],
        "before the bigint range": [-(2**63) - 1],
        "far past any range": [10**40],
        "object with extra keys": [{"t": AT["t"], "u": ID["u"]}],
    }
    for name, values in wrong.items():
        body = await gql(AUDIT, {"after": forge([1, audit_tag, values])}, admin_headers)
        try:
            assert_refused(body, ["auditLog"])
        except AssertionError as failure:
            raise AssertionError(f"{name}: {failure}") from None
    for payload in WRONG_SHAPES.values():
        assert_refused(await gql(AUDIT, {"after": forge(payload)}, admin_headers), ["auditLog"])


async def test_a_cursor_is_refused_by_every_list_it_was_not_made_for(
    gql: GraphQLClient, admin_headers: dict[str, str], populated: str
) -> None:
    customers = await gql(
        "{ customers(first: 1) { pageInfo { endCursor } } }", headers=admin_headers
    )
    requests = await gql(
        "{ dataSubjectRequests(first: 1) { pageInfo { endCursor } } }", headers=admin_headers
    )
    audit = await gql("{ auditLog(first: 1) { pageInfo { endCursor } } }", headers=admin_headers)
    events = await gql(
        "query($id: ID!) { customer(id: $id) { events(first: 1) { pageInfo { endCursor } } } }",
        {"id": populated},
        admin_headers,
    )
    made = {
        "customers": customers["data"]["customers"]["pageInfo"]["endCursor"],
        "dataSubjectRequests": requests["data"]["dataSubjectRequests"]["pageInfo"]["endCursor"],
        "auditLog": audit["data"]["auditLog"]["pageInfo"]["endCursor"],
        "customer.events": events["data"]["customer"]["events"]["pageInfo"]["endCursor"],
    }
    assert all(made.values()), made
    lists = {
        "customers": (CUSTOMERS, ["customers"]),
        "dataSubjectRequests": (REQUESTS, ["dataSubjectRequests"]),
        "auditLog": (AUDIT, ["auditLog"]),
        "customer.events": (EVENTS, ["customer", "events"]),
    }
    for source, cursor in made.items():
        for target, (query, path) in lists.items():
            body = await _run(gql, admin_headers, query, cursor, populated)
            if source == target:
                assert "errors" not in body, (source, body)
                continue
            try:
                assert_refused(body, path)
            except AssertionError as failure:
                raise AssertionError(f"{source} cursor on {target}: {failure}") from None


async def test_a_staff_user_cursor_is_refused_by_the_api_key_list(
    gql: GraphQLClient, admin_headers: dict[str, str], populated: str
) -> None:
    # Both lists sort newest first: only the list the cursor is bound to tells them apart.
    page = await gql("{ staffUsers(first: 1) { pageInfo { endCursor } } }", headers=admin_headers)
    cursor = page["data"]["staffUsers"]["pageInfo"]["endCursor"]
    assert cursor is not None
    assert_refused(await gql(API_KEYS, {"after": cursor}, admin_headers), ["apiKeys"])
    assert "errors" not in await gql(STAFF, {"after": cursor}, admin_headers)


async def test_an_api_key_cursor_is_refused_by_the_staff_user_list(
    gql: GraphQLClient, admin_headers: dict[str, str], populated: str
) -> None:
    page = await gql("{ apiKeys(first: 1) { pageInfo { endCursor } } }", headers=admin_headers)
    cursor = page["data"]["apiKeys"]["pageInfo"]["endCursor"]
    assert cursor is not None
    assert_refused(await gql(STAFF, {"after": cursor}, admin_headers), ["staffUsers"])
    assert "errors" not in await gql(API_KEYS, {"after": cursor}, admin_headers)


def test_a_forged_cursor_has_the_servers_own_encoding() -> None:
    # The forgeries above are only meaningful if ``forge`` builds what the server builds.
    at = AT_TIME
    key = uuid.UUID(ID["u"])
    values = [{"t": at.isoformat()}, {"u": str(key)}]
    assert forge([1, tag(EVENT_ORDER, None), values]) == encode_cursor(EVENT_ORDER, [at, key])
    assert forge([1, tag(RECENTLY_UPDATED, "customers"), values]) == (
        encode_cursor(RECENTLY_UPDATED, [at, key], list_name="customers")
    )


@pytest.mark.parametrize(("query", "list_tag", "order", "path"), PAIR_LISTS)
async def test_the_server_tags_its_cursors_as_the_forgeries_do(
    gql: GraphQLClient,
    admin_headers: dict[str, str],
    populated: str,
    query: str,
    list_tag: str,
    order: list[SortKey],
    path: list[str],
) -> None:
    # The list tags above are those of real cursors, so the forgeries reach the value checks.
    paged = query.replace("nodes { id }", "pageInfo { endCursor }").replace(
        "nodes { type }", "pageInfo { endCursor }"
    )
    body = await _run(gql, admin_headers, paged, None, populated)
    connection = body["data"]
    for step in path:
        connection = connection[step]
    cursor = connection["pageInfo"]["endCursor"]
    version, made_tag, values = json.loads(
        base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    )
    assert (version, made_tag, len(values)) == (1, list_tag, len(order))
